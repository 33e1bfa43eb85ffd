"""FLOPs of InternImage models, counted the way the published tables count
them, and the DCNv3 operator's FLOPs for mmengine's complexity counter.

**The DCNv3 term.** Per output pixel, sampling point and channel, DCNv3
does four bilinear taps and the mask weight: a DCNv3 call counts

    5 * n * k * c

(n output pixels over the batch, k = kernel_h * kernel_w sampling points,
c = group * group_channels channels; :func:`dcnv3_flops`). The layers around
the op (input/output projections, offset and mask linears, depth-wise conv)
are counted by the standard handles.

**Whole models** (:func:`complexity`, ``tools/get_flops.py``): every conv /
linear / matmul / norm is counted by mmengine's standard counter
(``mmengine.analysis.FlopAnalyzer``, fvcore rules: one multiply-add is one
FLOP), and each DCNv3 layer's sampling is added, which the counter cannot see
inside the stubbed op. Two-stage detectors are counted as mmdet 2's
``forward_dummy`` did: RPN head on all levels, then (for each cascade stage)
the box head on 1000 proposals and the mask head on the first 100;
Mask2Former segmentors run the backbone and the head's forward (class scores
and mask logits of every decoder layer); other models run their
``mode='tensor'`` forward.

**mmengine's counter** (``get_model_complexity_info``, and so mmdet's and
mmseg's ``tools/analysis_tools/get_flops.py``) traces a model with
``torch.jit`` and counts the operators it has a handle for. The compiled
DCNv3 is the registered operator ``ops_dcnv3::dcnv3``;
:func:`register_dcnv3_flop_handle` adds a handle for it to the counter's
default table (a private table of mmengine: ``compat.apply()`` does it, so
importing the package changes nothing), so that every ``FlopAnalyzer``
built afterwards counts each DCNv3 call as above. The pure-PyTorch core op
(``DCNv3_pytorch``) is counted through its own ``grid_sampler`` and
arithmetic operators instead; use the compiled one for figures comparable
with the published tables.
"""
import contextlib
import inspect
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

from .config import load_config, scope_of

__all__ = ['DCNV3_OP_NAME', 'DCNV3_COUNTER_NAME', 'FLOPS_PER_SAMPLE', 'DEFAULT_SHAPES',
           'dcnv3_flops', 'dcnv3_flop_jit', 'dcnv3_activation_jit',
           'register_dcnv3_flop_handle', 'count_dcnv3_sampling', 'complexity', 'get_flops']

#: Name of the operator in TorchScript traces.
DCNV3_OP_NAME = 'ops_dcnv3::dcnv3'
#: Operator name shown in ``FlopAnalyzer.by_operator()``.
DCNV3_COUNTER_NAME = 'dcnv3'
#: FLOPs per output pixel, sampling point and channel.
FLOPS_PER_SAMPLE = 5
#: The input size (H, W) of the published tables, by task scope.
DEFAULT_SHAPES = {'mmdet': (800, 1280), 'mmseg': (512, 2048)}
#: Proposals the box heads of two-stage detectors are counted on.
NUM_DUMMY_PROPOSALS = 1000


def dcnv3_flops(output_shape: List[int], kernel_h: int, kernel_w: int) -> int:
    """``5 * n * k * c`` for a DCNv3 call.

    Args:
        output_shape: the op's output shape, (N, Ho, Wo, group * group_channels).
        kernel_h: kernel height.
        kernel_w: kernel width.

    Returns:
        The FLOP count.
    """
    if len(output_shape) != 4:
        raise ValueError('DCNv3 output must be 4-D (N, Ho, Wo, C), got shape '
                         f'{tuple(output_shape)}')
    n, ho, wo, c = (int(v) for v in output_shape)
    return FLOPS_PER_SAMPLE * n * ho * wo * int(kernel_h) * int(kernel_w) * c


def dcnv3_flop_jit(inputs: List[Any], outputs: List[Any]) -> Counter:
    """mmengine jit handle of ``ops_dcnv3::dcnv3``.

    Args:
        inputs: the traced call's input values (input, offset, mask,
            kernel_h, kernel_w, ...).
        outputs: its output values.

    Returns:
        ``Counter({'dcnv3': flops})``.
    """
    from mmengine.analysis.jit_handles import get_shape
    out_shape = get_shape(outputs[0])
    if out_shape is None:
        raise ValueError(f'{DCNV3_OP_NAME}: the trace has no complete output '
                         'shape to count FLOPs from')
    kernel_h, kernel_w = inputs[3].toIValue(), inputs[4].toIValue()
    if kernel_h is None or kernel_w is None:
        # Not constants in the trace: the mask holds group * k points per
        # pixel, the output group * group_channels channels.
        mask_c = get_shape(inputs[2])[-1]
        group = inputs[11].toIValue()
        kernel_h, kernel_w = mask_c // group, 1
    return Counter({DCNV3_COUNTER_NAME: dcnv3_flops(out_shape, kernel_h, kernel_w)})


def dcnv3_activation_jit(inputs: List[Any], outputs: List[Any]) -> Counter:
    """mmengine activation handle of ``ops_dcnv3::dcnv3``: its output size,
    as for convolutions and linears."""
    from mmengine.analysis.jit_handles import get_shape
    n = 1
    for v in get_shape(outputs[0]) or ():
        n *= int(v)
    return Counter({DCNV3_COUNTER_NAME: n})


def register_dcnv3_flop_handle() -> None:
    """Adds the DCNv3 handles to mmengine's default FLOP and activation
    tables (idempotent). Called by ``compat.apply()``, i.e. when a config's
    ``custom_imports`` import ``projects.internimage.compat``, or when the
    tools load a config."""
    from mmengine.analysis import complexity_analysis as ca
    ca._DEFAULT_SUPPORTED_FLOP_OPS[DCNV3_OP_NAME] = dcnv3_flop_jit
    ca._DEFAULT_SUPPORTED_ACT_OPS[DCNV3_OP_NAME] = dcnv3_activation_jit


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
    traced = _tensor_forward(model, scope_of(cfg), h, w)
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


def get_flops(config: str, shape: Optional[Sequence[int]] = None,
              cfg_options: Optional[dict] = None) -> Dict[str, Any]:
    """FLOPs and parameters of a config's model (``tools/get_flops.py``).

    Args:
        config: The config file.
        shape: Input (H, W), or one size for a square; default
            :data:`DEFAULT_SHAPES` of the config's task.
        cfg_options: ``--cfg-options``.

    Returns:
        :func:`complexity`'s result, with ``shape``: the (H, W) counted.

    Raises:
        ValueError: ``shape`` has neither one nor two sizes.
    """
    cfg = load_config(config, cfg_options)
    shape = tuple(shape or DEFAULT_SHAPES[scope_of(cfg)])
    if len(shape) not in (1, 2):
        raise ValueError(f'--shape takes H W or a single size, got {list(shape)}')
    # no pretrained weights are needed for counting
    cfg.model.backbone.init_cfg = None
    result = complexity(cfg, shape)
    result['shape'] = shape if len(shape) == 2 else shape * 2
    return result
