"""Export an InternImage segmentor or detector to ONNX and check it in onnxruntime.

- segmentors (``default_scope='mmseg'``): end to end, the preprocessed image
  (N, 3, H, W) in, the logits (N, num_classes, H, W) out (the decode head's
  logits resized to the input, as ``encode_decode`` gives them);
- detectors (``default_scope='mmdet'``): backbone + neck, the preprocessed
  image in, the neck's feature maps out (``feat0`` ... ``featK``).

The input is the image after the model's data preprocessor: RGB or BGR as
the config says, minus ``mean``, divided by ``std`` (no padding).

DCNv3 is exported in the portable form by default (standard ONNX ops, see
``ops_dcnv3/onnx.py``); ``--plugin`` writes ``mmdeploy::TRTDCNv3`` nodes
instead, for TensorRT with the DCNv3 plugin (onnxruntime cannot run those:
the file is then only checked with the ONNX checker).

After exporting, the tool runs the file in onnxruntime on a random image
(``--image`` for a real one) and prints the largest difference to PyTorch;
with ``--dynamic`` also at a second batch size and image size. It exits
with status 1 when the largest difference, relative to the largest logit /
feature, is above ``--tolerance``.

Example::

    python tools/deployment/export_onnx.py \\
        configs/ade20k/upernet_internimage_t_512_160k_ade20k.py \\
        upernet_t.pth --shape 512 512 upernet_t.onnx
    # largest difference |onnxruntime - PyTorch|: 2.3e-05 (relative 1.1e-06)

``CHECKPOINT`` may be ``none`` for random weights (a trial export).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from config_loader import load_config  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

#: Default tolerance on max|onnxruntime - PyTorch| / max|PyTorch|.
TOLERANCE = 1e-4


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Export a segmentor (end to end) or a detector (backbone '
        '+ neck) to ONNX and check it with onnxruntime')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint',
                        help="checkpoint file, or 'none' for random weights")
    parser.add_argument('out', help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, required=True,
                        metavar=('H', 'W'), help='input image height and width')
    parser.add_argument('--plugin', action='store_true',
                        help='DCNv3 as mmdeploy::TRTDCNv3 nodes (TensorRT '
                        'plugin) instead of standard ONNX ops')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch size, height and width')
    parser.add_argument('--image', help='image to check with (default: random)')
    parser.add_argument('--tolerance', type=float, default=TOLERANCE,
                        help='largest accepted max|diff| / max|PyTorch| '
                        f'(default {TOLERANCE})')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights and image')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    return parser.parse_args(argv)


# ------------------------------------------------------------------ models


class SegmentorLogits(nn.Module):
    """A segmentor's logits at the input's size (``encode_decode``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        from mmseg.models.utils import resize
        logits = self.model.decode_head(self.model.extract_feat(inputs))
        return resize(logits, size=inputs.shape[2:], mode='bilinear',
                      align_corners=self.model.decode_head.align_corners)


class DetectorFeatures(nn.Module):
    """A detector's backbone + neck (``extract_feat``): a tuple of maps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.model.extract_feat(inputs))


def _adaptive_avg_pool_1d(x: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """``adaptive_avg_pool`` along ``dim`` to ``size`` bins from a cumulative
    sum: bin i averages [floor(i * L / size), ceil((i + 1) * L / size))."""
    length = x.shape[dim]
    bins = torch.arange(size, device=x.device)
    start = bins * length // size
    end = ((bins + 1) * length + size - 1) // size
    zero = x.narrow(dim, 0, 1).mul(0)
    total = torch.cat([zero, x.cumsum(dim)], dim)
    sums = total.index_select(dim, end) - total.index_select(dim, start)
    count = (end - start).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = size
    return sums / count.view(shape)


class DynamicAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` whose graph works at any input size.

    The exporter unrolls ``AdaptiveAvgPool2d`` into gathers at the export
    size (ONNX has no adaptive pooling), so a graph with dynamic height and
    width would read the wrong pixels at another size; this one computes the
    bins from the input's size in the graph (the same averages).

    Args:
        output_size: the pooled (height, width), or one int for both.
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if any(s is None for s in output_size):
            raise ValueError('DynamicAdaptiveAvgPool2d needs both output sizes, '
                             f'got {output_size}')
        self.output_size = tuple(int(s) for s in output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _adaptive_avg_pool_1d(x, x.dim() - 2, self.output_size[0])
        return _adaptive_avg_pool_1d(x, x.dim() - 1, self.output_size[1])


@contextlib.contextmanager
def dynamic_adaptive_pooling(module: nn.Module) -> Iterator[int]:
    """Within the block, ``module``'s ``nn.AdaptiveAvgPool2d`` layers (other
    than global pooling) are :class:`DynamicAdaptiveAvgPool2d`; yields how
    many were replaced."""
    replaced = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            size = getattr(child, 'output_size', None)
            if type(child) is nn.AdaptiveAvgPool2d and size not in (1, (1, 1)):
                setattr(parent, name, DynamicAdaptiveAvgPool2d(size))
                replaced.append((parent, name, child))
    try:
        yield len(replaced)
    finally:
        for parent, name, child in replaced:
            setattr(parent, name, child)


def build_model(cfg, checkpoint: str, seed: int = 0) -> nn.Module:
    """The config's model in eval mode on the CPU, with ``checkpoint``'s
    weights ('none': random ones, seeded)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    from mmengine.runner import load_checkpoint
    if checkpoint.lower() != 'none' and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    backbone = cfg.model.get('backbone', None)
    if backbone is not None:  # no pretrained download: the weights come next
        backbone['init_cfg'] = None
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if checkpoint.lower() != 'none':
        load_checkpoint(model, checkpoint, map_location='cpu')
    return revert_sync_batchnorm(model).eval()


def export_module(cfg, model: nn.Module) -> Tuple[nn.Module, List[str]]:
    """The module to export and its output names."""
    scope = cfg.get('default_scope', None)
    if scope == 'mmseg':
        return SegmentorLogits(model).eval(), ['logits']
    if scope == 'mmdet':
        if not hasattr(model, 'extract_feat'):
            raise ValueError(f'{type(model).__name__} has no extract_feat: '
                             'only backbone + neck of detectors are exported')
        with torch.no_grad():
            levels = len(DetectorFeatures(model)(torch.zeros(1, 3, 64, 64)))
        return DetectorFeatures(model).eval(), [f'feat{i}' for i in range(levels)]
    raise ValueError("config default_scope must be 'mmdet' or 'mmseg', got "
                     f'{scope!r}')


# ------------------------------------------------------------------ inputs


def preprocess(cfg, image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) BGR 0-255 images -> the model's input (channel order,
    mean, std of ``cfg.model.data_preprocessor``)."""
    pre = cfg.model.get('data_preprocessor', {})
    if pre.get('bgr_to_rgb', False) or pre.get('rgb_to_bgr', False):
        image = image.flip(1)
    mean = torch.tensor(pre.get('mean', [0., 0., 0.])).view(1, -1, 1, 1)
    std = torch.tensor(pre.get('std', [1., 1., 1.])).view(1, -1, 1, 1)
    return ((image - mean) / std).float()


def make_input(cfg, shape: Sequence[int], batch: int = 1,
               image: Optional[str] = None, seed: int = 0) -> torch.Tensor:
    """A preprocessed input of ``shape`` (H, W): ``image`` resized, or random
    pixels."""
    h, w = shape
    if image is not None:
        import mmcv
        if not osp.isfile(image):
            raise FileNotFoundError(f'--image {image!r} does not exist')
        pixels = mmcv.imresize(mmcv.imread(image, channel_order='bgr'), (w, h))
        bgr = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
        bgr = bgr.expand(batch, -1, -1, -1)
    else:
        gen = torch.Generator().manual_seed(seed)
        bgr = torch.rand(batch, 3, h, w, generator=gen) * 255
    return preprocess(cfg, bgr)


# ------------------------------------------------------------------- check


def count_plugin_nodes(path: str) -> int:
    """Number of ``mmdeploy::TRTDCNv3`` nodes in the ONNX file ``path``."""
    import onnx
    from ops_dcnv3.onnx import PLUGIN_DOMAIN, PLUGIN_OP
    graph = onnx.load(path, load_external_data=False).graph
    return sum(n.domain == PLUGIN_DOMAIN and n.op_type == PLUGIN_OP
               for n in graph.node)


def compare(path: str, module: nn.Module, inputs: torch.Tensor
            ) -> Dict[str, float]:
    """Runs the ONNX file in onnxruntime (CPU) and ``module`` in PyTorch on
    ``inputs``; the largest absolute difference over all outputs and that
    difference relative to the largest PyTorch value."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    with torch.no_grad():
        ref = module(inputs)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    if len(got) != len(ref):
        raise RuntimeError(f'{path}: {len(got)} outputs, PyTorch gives {len(ref)}')
    diff, scale = 0.0, 0.0
    for name, g, r in zip((o.name for o in session.get_outputs()), got, ref):
        if tuple(g.shape) != tuple(r.shape):
            raise RuntimeError(f'{path}: output {name} has shape {g.shape}, '
                               f'PyTorch gives {tuple(r.shape)}')
        diff = max(diff, (torch.from_numpy(g) - r).abs().max().item())
        scale = max(scale, r.abs().max().item())
    return dict(max_abs=diff, max_rel=diff / max(scale, 1e-30))


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config!r} does not exist')
    if min(args.shape) < 32:
        raise ValueError(f'--shape {args.shape}: height and width must be at '
                         'least 32 (the backbone downsamples 32 times)')
    cfg = load_config(args.config, args.cfg_options)
    from ops_dcnv3 import onnx as dcnv3_onnx

    model = build_model(cfg, args.checkpoint, args.seed)
    module, output_names = export_module(cfg, model)
    inputs = make_input(cfg, args.shape, image=args.image, seed=args.seed)
    dynamic_shapes = None
    if args.dynamic:
        auto = torch.export.Dim.AUTO
        dynamic_shapes = ({0: auto, 2: auto, 3: auto}, )
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    pooling = (dynamic_adaptive_pooling(module) if args.dynamic
               else contextlib.nullcontext())
    with pooling:
        dcnv3_onnx.export(module, (inputs, ), args.out, plugin=args.plugin,
                          input_names=['input'], output_names=output_names,
                          dynamic_shapes=dynamic_shapes)
    size = osp.getsize(args.out) / 2**20
    print(f'wrote {args.out} ({size:.1f} MiB, opset {dcnv3_onnx.OPSET}, DCNv3 '
          f'{"plugin" if args.plugin else "portable"})')

    import onnx
    onnx.checker.check_model(args.out)
    if args.plugin:
        print(f'{count_plugin_nodes(args.out)} {dcnv3_onnx.PLUGIN_DOMAIN}::'
              f'{dcnv3_onnx.PLUGIN_OP} nodes; onnxruntime has no kernel for '
              'them: checked with the ONNX checker only')
        return {}
    checks = [('', inputs)]
    if args.dynamic:
        h, w = args.shape
        checks.append((' (dynamic: batch 2, +32 px)',
                       make_input(cfg, (h + 32, w + 32), batch=2,
                                  image=args.image, seed=args.seed + 1)))
    result: Dict[str, float] = dict(max_abs=0.0, max_rel=0.0)
    for label, x in checks:
        r = compare(args.out, module, x)
        print(f'largest difference |onnxruntime - PyTorch|{label} at '
              f'{tuple(x.shape)}: {r["max_abs"]:.3g} (relative '
              f'{r["max_rel"]:.3g})')
        result = {k: max(result[k], r[k]) for k in result}
    if result['max_rel'] > args.tolerance:
        print(f'FAILED: relative difference {result["max_rel"]:.3g} > '
              f'--tolerance {args.tolerance:g}', file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == '__main__':
    main()
