"""Count the FLOPs and parameters of a model the way the published tables do.

Every conv / linear / matmul / norm is counted by mmengine's standard
counter (``mmengine.analysis.FlopAnalyzer``, fvcore rules: one multiply-add
is one FLOP), and for each DCNv3 layer the sampling is added as
``5 * n * k * c`` (n output pixels, k sampling points, c channels), which
the counter cannot see inside the op. Two-stage detectors are counted as
mmdet 2's ``forward_dummy`` did: RPN head on all levels, then (for each
cascade stage) the box head on 1000 proposals and the mask head on the
first 100; Mask2Former segmentors run the backbone and the head's forward
(class scores and mask logits of every decoder layer); other models run
their ``mode='tensor'`` forward.

Example::

    python tools/get_flops.py configs/coco/mask_rcnn_internimage_t_fpn_1x_coco.py
    # Flops: 270.0G
    # Params: 48.9M
"""
from __future__ import annotations

import argparse
import contextlib
import os.path as osp
import sys
from typing import Dict, Iterator, List, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import config_loader  # noqa: E402

config_loader.add_repo_root_to_path()

import torch  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_SHAPES = {'mmdet': (800, 1280), 'mmseg': (512, 2048)}
NUM_DUMMY_PROPOSALS = 1000


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Get a model\'s FLOPs')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar=('H', 'W'),
        help='input size H W (one value: square); default 800 1280 for '
        'detection, 512 2048 for segmentation')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    return parser.parse_args(argv)


@contextlib.contextmanager
def count_dcnv3_sampling(model: nn.Module) -> Iterator[List[int]]:
    """Stub the DCNv3 core op of ``model`` and record its sampling FLOPs.

    Inside the context each DCNv3 core call returns zeros of the output shape
    (the value does not change what the counter sees) and appends
    ``5 * n * k * c`` to the yielded list. The zeros still depend on the
    op's inputs (through uncounted sums), so that the trace keeps the
    layers computing the offsets and the mask.
    """
    from ops_dcnv3.modules import DCNv3, DCNv3_pytorch
    from projects.internimage.flops import dcnv3_flops
    classes = {type(m) for m in model.modules()
               if isinstance(m, (DCNv3, DCNv3_pytorch))}
    counts: List[int] = []

    def stub(x, offset, mask, kh, kw, sh, sw, ph, pw, dh, dw, group,
             group_channels, offset_scale):
        n, h, w, _ = x.shape
        ho = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
        wo = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
        c = group * group_channels
        counts.append(dcnv3_flops([n, ho, wo, c], kh, kw))
        keep = (x.sum() + offset.sum() + mask.sum()) * 0
        return x.new_zeros(int(n), int(ho), int(wo), int(c)) + keep

    saved = {cls: cls.__dict__.get('core') for cls in classes}
    try:
        for cls in classes:
            cls.core = staticmethod(stub)
        yield counts
    finally:
        for cls, core in saved.items():
            if core is None:
                del cls.core
            else:
                cls.core = core


class _TensorForward(nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` with fixed samples."""

    def __init__(self, model: nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self.data_samples, mode='tensor')


class _TwoStageDummy(nn.Module):
    """mmdet 2's ``forward_dummy`` of (cascade) two-stage detectors:
    backbone, neck and RPN head, then every stage's box head on 1000 fixed
    proposals and mask head on the first 100 of them."""

    def __init__(self, model: nn.Module, h: int, w: int) -> None:
        super().__init__()
        self.model = model
        g = torch.Generator().manual_seed(0)
        xy = torch.rand(NUM_DUMMY_PROPOSALS, 2, generator=g) * 0.8
        wh = torch.rand(NUM_DUMMY_PROPOSALS, 2, generator=g) * 0.2 + 0.01
        boxes = torch.cat([xy, xy + wh], 1) * torch.tensor([w, h, w, h])
        self.register_buffer('rois', torch.cat(
            [boxes.new_zeros(len(boxes), 1), boxes], 1))

    def forward(self, inputs: torch.Tensor) -> tuple:
        x = self.model.extract_feat(inputs)
        outs = tuple(self.model.rpn_head(x))
        head = self.model.roi_head
        for stage in range(getattr(head, 'num_stages', 1)):
            extra = (stage, ) if hasattr(head, 'num_stages') else ()
            if head.with_bbox:
                res = head._bbox_forward(*extra, x, self.rois)
                outs += (res['cls_score'], res['bbox_pred'])
            if head.with_mask:
                res = head._mask_forward(*extra, x, self.rois[:100])
                outs += (res['mask_preds'], )
        return outs


class _SegHeadWithMetas(nn.Module):
    """Backbone (and neck), then a decode head whose forward needs the image
    metas (mmseg's ``Mask2FormerHead``): its raw outputs, the class scores
    and mask logits of every decoder layer, as mmseg's ``mode='tensor'``
    returns for other heads."""

    def __init__(self, model: nn.Module, h: int, w: int) -> None:
        super().__init__()
        from mmseg.structures import SegDataSample
        self.model = model
        meta = dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w),
                    batch_input_shape=(h, w))
        self.data_samples = [SegDataSample(metainfo=meta)]

    def forward(self, inputs: torch.Tensor):
        x = self.model.extract_feat(inputs)
        return self.model.decode_head(x, self.data_samples)


def _head_needs_metas(model: nn.Module) -> bool:
    import inspect
    head = getattr(model, 'decode_head', None)
    return head is not None and 'batch_data_samples' in inspect.signature(
        head.forward).parameters


def _tensor_forward(model: nn.Module, scope: str, h: int,
                    w: int) -> nn.Module:
    """The module to trace for ``model`` on an (h, w) input."""
    if scope == 'mmseg':
        if _head_needs_metas(model):
            return _SegHeadWithMetas(model, h, w)
        return _TensorForward(model, None)
    if hasattr(model, 'rpn_head') and hasattr(model, 'roi_head'):
        return _TwoStageDummy(model, h, w)
    from mmdet.structures import DetDataSample
    sample = DetDataSample(
        metainfo=dict(
            img_id=0,
            img_shape=(h, w),
            ori_shape=(h, w),
            pad_shape=(h, w),
            batch_input_shape=(h, w),
            scale_factor=(1., 1.)))
    return _TensorForward(model, [sample])


def complexity(cfg, shape: Sequence[int]) -> Dict[str, float]:
    """FLOPs (counter + DCNv3 sampling) and parameters of ``cfg.model``.

    Returns ``flops``, ``counter_flops``, ``dcnv3_flops``, ``params`` and
    ``by_module`` (the counter's FLOPs per module name, e.g.
    ``'model.rpn_head.rpn_conv'``).
    """
    from mmengine.analysis import FlopAnalyzer, parameter_count
    from mmengine.registry import MODELS
    h, w = (shape[0], shape[0]) if len(shape) == 1 else shape[:2]
    model = MODELS.build(cfg.model)
    model.eval()
    traced = _tensor_forward(model, config_loader.scope_of(cfg), h, w)
    inputs = torch.randn(1, 3, h, w)
    with count_dcnv3_sampling(model) as dcn, torch.no_grad():
        analyzer = FlopAnalyzer(traced, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        counter = analyzer.total()
        by_module = dict(analyzer.by_module())
    dcn_flops = sum(dcn)
    return dict(
        flops=counter + dcn_flops,
        counter_flops=counter,
        dcnv3_flops=dcn_flops,
        params=parameter_count(model)[''],
        by_module=by_module)


def main(argv=None) -> Dict[str, float]:
    args = parse_args(argv)
    cfg = config_loader.load_config(args.config, args.cfg_options)
    shape: Tuple[int, ...] = tuple(
        args.shape or DEFAULT_SHAPES[config_loader.scope_of(cfg)])
    if len(shape) not in (1, 2):
        raise ValueError('--shape takes H W or a single size')
    # no pretrained weights are needed for counting
    cfg.model.backbone.init_cfg = None
    result = complexity(cfg, shape)
    size = shape if len(shape) == 2 else shape * 2
    split = '=' * 30
    print(f'{split}\nInput shape: (3, {size[0]}, {size[1]})\n'
          f'Flops: {result["flops"] / 1e9:.1f}G\n'
          f'  (counter {result["counter_flops"] / 1e9:.1f}G + DCNv3 sampling '
          f'{result["dcnv3_flops"] / 1e9:.2f}G)\n'
          f'Params: {result["params"] / 1e6:.1f}M\n{split}')
    return result


if __name__ == '__main__':
    main()
