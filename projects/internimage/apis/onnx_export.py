"""Exporting an InternImage segmentor or detector to ONNX and checking it in
onnxruntime (the body of ``tools/deployment/export_onnx.py``).

- segmentors (``default_scope='mmseg'``): end to end, the preprocessed image
  (N, 3, H, W) in, the logits (N, num_classes, H, W) out (the decode head's
  logits resized to the input, as ``encode_decode`` gives them);
- detectors (``default_scope='mmdet'``): backbone + neck, the preprocessed
  image in, the neck's feature maps out (``feat0`` ... ``featK``).

The input is the image after the model's data preprocessor: RGB or BGR as
the config says, minus ``mean``, divided by ``std`` (no padding).

DCNv3 is exported in the portable form by default (standard ONNX ops, see
``ops_dcnv3/onnx.py``); ``plugin=True`` writes ``mmdeploy::TRTDCNv3`` nodes
instead, for TensorRT with the DCNv3 plugin (onnxruntime cannot run those:
the file is then only checked with the ONNX checker).

:func:`export_onnx` runs the model once in PyTorch on the check input (that
forward names the outputs and is the reference of the check), exports, and
runs the file in onnxruntime on the same input; with ``dynamic=True`` also
at a second batch size and image size. It returns the largest difference to
PyTorch, absolute and relative to the largest logit / feature.
"""
import contextlib
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .config import load_config

__all__ = ['TOLERANCE', 'SegmentorLogits', 'DetectorFeatures', 'DynamicAdaptiveAvgPool2d',
           'dynamic_adaptive_pooling', 'build_model', 'export_module', 'preprocess',
           'output_names', 'make_input', 'count_plugin_nodes', 'compare', 'export_onnx']

#: Default tolerance on max|onnxruntime - PyTorch| / max|PyTorch|.
TOLERANCE = 1e-4


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


def export_module(cfg, model: nn.Module) -> nn.Module:
    """The module to export: :class:`SegmentorLogits` of a segmentor,
    :class:`DetectorFeatures` of a detector."""
    scope = cfg.get('default_scope', None)
    if scope == 'mmseg':
        return SegmentorLogits(model).eval()
    if scope == 'mmdet':
        if not hasattr(model, 'extract_feat'):
            raise ValueError(f'{type(model).__name__} has no extract_feat: '
                             'only backbone + neck of detectors are exported')
        return DetectorFeatures(model).eval()
    raise ValueError("config default_scope must be 'mmdet' or 'mmseg', got "
                     f'{scope!r}')


def output_names(cfg, outputs: Sequence[torch.Tensor]) -> List[str]:
    """``['logits']`` for a segmentor, ``feat0`` ... ``featK`` for the
    ``outputs`` of a detector's backbone + neck."""
    if cfg.get('default_scope', None) == 'mmseg':
        return ['logits']
    return [f'feat{i}' for i in range(len(outputs))]


def _as_list(outputs) -> List[torch.Tensor]:
    return [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)


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


def compare(path: str, inputs: torch.Tensor, expected: Sequence[torch.Tensor]
            ) -> Dict[str, float]:
    """Runs the ONNX file in onnxruntime (CPU) on ``inputs``; the largest
    absolute difference to ``expected`` (PyTorch's outputs) over all outputs
    and that difference relative to the largest PyTorch value."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    if len(got) != len(expected):
        raise RuntimeError(f'{path}: {len(got)} outputs, PyTorch gives {len(expected)}')
    diff, scale = 0.0, 0.0
    for name, g, r in zip((o.name for o in session.get_outputs()), got, expected):
        if tuple(g.shape) != tuple(r.shape):
            raise RuntimeError(f'{path}: output {name} has shape {g.shape}, '
                               f'PyTorch gives {tuple(r.shape)}')
        diff = max(diff, (torch.from_numpy(g) - r).abs().max().item())
        scale = max(scale, r.abs().max().item())
    return dict(max_abs=diff, max_rel=diff / max(scale, 1e-30))


def export_onnx(config: str, checkpoint: str, out: str, shape: Sequence[int],
                plugin: bool = False, dynamic: bool = False, image: Optional[str] = None,
                seed: int = 0, cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """Export a config's model to ``out`` and check it (see the module docstring).

    Args:
        config: The config file.
        checkpoint: A checkpoint file, or ``'none'`` for random weights.
        out: The ONNX file to write.
        shape: The input (H, W).
        plugin: DCNv3 as ``mmdeploy::TRTDCNv3`` nodes (no onnxruntime check).
        dynamic: Dynamic batch size, height and width (checked at a second
            batch size and size too).
        image: An image to check with (default: random pixels).
        seed: Seed of the random weights and image.
        cfg_options: ``--cfg-options``.

    Returns:
        ``max_abs`` and ``max_rel``, the largest differences over the checks
        (empty with ``plugin``).

    Raises:
        FileNotFoundError: ``config``, ``checkpoint`` or ``image`` is missing.
        ValueError: ``shape`` below 32 pixels.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config!r} does not exist')
    if min(shape) < 32:
        raise ValueError(f'--shape {list(shape)}: height and width must be at '
                         'least 32 (the backbone downsamples 32 times)')
    cfg = load_config(config, cfg_options)
    from ops_dcnv3 import onnx as dcnv3_onnx

    model = build_model(cfg, checkpoint, seed)
    module = export_module(cfg, model)
    inputs = make_input(cfg, shape, image=image, seed=seed)
    with torch.no_grad():
        expected = _as_list(module(inputs))
    dynamic_shapes = None
    if dynamic:
        auto = torch.export.Dim.AUTO
        dynamic_shapes = ({0: auto, 2: auto, 3: auto}, )
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    pooling = (dynamic_adaptive_pooling(module) if dynamic
               else contextlib.nullcontext())
    with pooling:
        dcnv3_onnx.export(module, (inputs, ), out, plugin=plugin,
                          input_names=['input'], output_names=output_names(cfg, expected),
                          dynamic_shapes=dynamic_shapes)
    size = osp.getsize(out) / 2**20
    print(f'wrote {out} ({size:.1f} MiB, opset {dcnv3_onnx.OPSET}, DCNv3 '
          f'{"plugin" if plugin else "portable"})')

    import onnx
    onnx.checker.check_model(out)
    if plugin:
        print(f'{count_plugin_nodes(out)} {dcnv3_onnx.PLUGIN_DOMAIN}::'
              f'{dcnv3_onnx.PLUGIN_OP} nodes; onnxruntime has no kernel for '
              'them: checked with the ONNX checker only')
        return {}
    checks = [('', inputs, expected)]
    if dynamic:
        h, w = shape
        x = make_input(cfg, (h + 32, w + 32), batch=2, image=image, seed=seed + 1)
        with torch.no_grad():
            checks.append((' (dynamic: batch 2, +32 px)', x, _as_list(module(x))))
    result: Dict[str, float] = dict(max_abs=0.0, max_rel=0.0)
    for label, x, ref in checks:
        r = compare(out, x, ref)
        print(f'largest difference |onnxruntime - PyTorch|{label} at '
              f'{tuple(x.shape)}: {r["max_abs"]:.3g} (relative '
              f'{r["max_rel"]:.3g})')
        result = {k: max(result[k], r[k]) for k in result}
    return result
