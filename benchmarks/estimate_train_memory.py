"""Estimate, without a GPU, the peak GPU memory of one training step of the
DINO-H / DINO + CB-InternImage-H configs at their published batch (one image
per GPU), activation checkpointing on.

Run from the repository root::

    python benchmarks/estimate_train_memory.py
    python benchmarks/estimate_train_memory.py \\
        --config configs/coco/dino_4scale_internimage_h_objects365_coco_ss.py

What it adds up (float32 everywhere, as the recipe trains):

- parameters, their gradients and AdamW's two moments: counted exactly
  (the model built on the meta device), 4 bytes each; PyTorch's multi-tensor
  AdamW step also makes one temporary of the size of the largest parameter
  group (``sqrt`` of the second moments);
- the backbone's activations kept for the backward pass: every tensor that
  autograd saves (``saved_tensors_hooks``; checkpointed blocks save their
  input), counted once per storage, on FakeTensors of the full image size
  (shapes and strides only, no memory; the count equals that of real
  tensors, checked by ``--check``); with the compiled DCNv3 op, which saves
  what the CUDA op saves;
- the recomputation peak of checkpointing: one block of the widest stage,
  run without checkpointing (its saved tensors, and as much again for the
  gradients flowing through it);
- the neck, transformer and losses: the same count on real CPU tensors at
  three small image sizes, with the backbone replaced by random features of
  the right shapes, fitted as ``a + b * pixels`` and extrapolated (encoder
  tokens grow with the pixels; the decoder's 900 queries plus up to 2000
  denoising queries do not). The deformable attentions save what mmcv's
  CUDA op saves (value, sampling locations, attention weights), not what its
  CPU path saves.

The peak is the largest of three bounds, one per part of the step: the end
of the forward pass (weights, moments, every activation); the backward pass
through the backbone (weights, moments, all gradients, all backbone
activations, one recomputed block); the optimizer step (weights, moments,
gradients, the AdamW temporary).

Not counted: the CUDA context and library workspaces (about 0.5-1 GiB) and
allocator fragmentation.
"""
import argparse
import gc
import sys
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tools'))

GIB = 2.0**30
DEFAULT_CONFIG = 'configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ss.py'


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--shape', type=int, nargs=2, default=(1824, 2016), metavar=('H', 'W'),
                        help='padded training image (default: the largest of the recipe, '
                        '1800 x 2000 padded to a multiple of 32)')
    parser.add_argument('--num-gt', type=int, default=20,
                        help='boxes per image (sets the denoising queries: 2 x 1000 at most)')
    parser.add_argument('--fit-sizes', type=int, nargs='+', default=(320, 384, 448),
                        help='image heights of the neck/transformer fit (width x 1.105)')
    parser.add_argument('--check', action='store_true',
                        help='also check FakeTensor counting against real tensors')
    return parser.parse_args(argv)


class SavedTensors:
    """Bytes of the storages autograd saves for the backward pass inside the
    context, each storage once, parameters excluded."""

    def __init__(self, exclude: Sequence[torch.Tensor] = (), fake: bool = False) -> None:
        self.fake = fake
        self.exclude = {self._key(t) for t in exclude}
        self.storages: Dict[int, Tuple[int, torch.Tensor]] = {}

    def _key(self, t: torch.Tensor) -> int:
        storage = t.untyped_storage()
        return storage._cdata if self.fake else storage.data_ptr()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        # detached: a saved output would otherwise hold its own graph
        # (a cycle through C++ that Python's gc cannot free)
        t = t.detach()
        key = self._key(t)
        if key not in self.exclude:
            self.storages[key] = (t.untyped_storage().nbytes(), t)
        return t

    def __enter__(self) -> 'SavedTensors':
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @property
    def nbytes(self) -> int:
        return sum(n for n, _ in self.storages.values())


def load(config: str):
    from config_loader import load_config
    return load_config(str(ROOT / config) if not Path(config).is_absolute() else config)


def build(model_cfg, device: str = 'cpu') -> nn.Module:
    import copy
    from mmdet.registry import MODELS
    with torch.device(device):
        return MODELS.build(copy.deepcopy(model_cfg))


def on_fake(module_cfg: dict, run: Callable[[nn.Module], None], fake=True) -> int:
    """Build ``module_cfg`` (a backbone) on FakeTensors (or real CPU
    tensors) and return the bytes ``run(module)`` saves for backward."""
    from mmdet.registry import MODELS
    from torch._subclasses.fake_tensor import FakeTensorMode
    if not fake:
        torch.manual_seed(0)
        module = MODELS.build(dict(module_cfg)).train()
        with SavedTensors(list(module.parameters())) as saved:
            run(module)
        return saved.nbytes
    with torch.device('meta'):
        module = MODELS.build(dict(module_cfg))
    with FakeTensorMode(allow_non_fake_inputs=True):
        module = module.to_empty(device='cpu').train()
        with SavedTensors(list(module.parameters()), fake=True) as saved:
            run(module)
    return saved.nbytes


def backbone_activations(backbone_cfg: dict, h: int, w: int, fake=True) -> int:
    return on_fake(backbone_cfg, lambda m: m(torch.empty(1, 3, h, w)), fake)


def block_recompute(backbone_cfg: dict, h: int, w: int) -> Tuple[int, int]:
    """Bytes one block of stage 0 (the widest activations) saves without
    checkpointing, and the size of its input."""
    cfg = dict(backbone_cfg, with_cp=False)
    box: Dict[str, int] = {}

    def run(model: nn.Module) -> None:
        branch = model.cb_modules[0] if hasattr(model, 'cb_modules') else model
        block = branch.levels[0].blocks[0]
        x = torch.empty(1, h // 4, w // 4, branch.channels, requires_grad=True)
        box['input'] = x.numel() * x.element_size()
        block(x)

    saved = on_fake(cfg, run)
    return saved, box['input']


#: mmcv's own PyTorch path, while ``cuda_like_deform_attn`` replaces it.
_PYTORCH_DEFORM_ATTN: List[Callable] = []


class _CudaLikeDeformAttn(torch.autograd.Function):
    """mmcv's multi-scale deformable attention computed by its PyTorch
    path, saving for backward what its CUDA op saves (value, the spatial
    shapes and level starts, the sampling locations and attention weights)."""

    @staticmethod
    def forward(ctx, value, spatial_shapes, level_start_index, sampling_locations,
                attention_weights):
        ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_locations,
                              attention_weights)
        return _PYTORCH_DEFORM_ATTN[0](value, spatial_shapes, sampling_locations,
                                       attention_weights)

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover  (never run: counting only)
        raise NotImplementedError


def cuda_like_deform_attn(value, spatial_shapes, sampling_locations, attention_weights):
    starts = torch.cat([spatial_shapes.new_zeros(1),
                        spatial_shapes.prod(1).cumsum(0)[:-1]])
    return _CudaLikeDeformAttn.apply(value, spatial_shapes, starts, sampling_locations,
                                     attention_weights)


class RandomFeatures(nn.Module):
    """The backbone's outputs as random leaf tensors of the right shapes
    (one tuple per backbone for a composite one)."""

    def __init__(self, widths: Sequence[int], strides: Sequence[int], branches: int) -> None:
        super().__init__()
        self.widths, self.strides, self.branches = widths, strides, branches

    def forward(self, x: torch.Tensor):
        n, _, h, w = x.shape
        feats = [tuple(torch.randn(n, c, -(-h // s), -(-w // s), requires_grad=True)
                       for c, s in zip(self.widths, self.strides))
                 for _ in range(self.branches)]
        return tuple(feats) if self.branches > 1 else feats[0]


def head_activations(cfg, h: int, w: int, num_gt: int, cuda_like: bool = True) -> int:
    """Bytes the neck, transformer and losses save for backward (real CPU
    tensors), the backbone replaced by random features; with ``cuda_like``,
    the deformable attentions save what mmcv's CUDA op saves."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from projects.internimage.model_checks import backbone_out_channels, backbone_out_indices
    bb = dict(cfg.model.backbone)
    widths = backbone_out_channels(bb)
    strides = [4 * 2**i for i in backbone_out_indices(bb)]
    small = dict(cfg.model)
    small['backbone'] = dict(bb, channels=8, depths=[1, 1, 1, 1], groups=[1, 1, 1, 1],
                             level2_post_norm_block_ids=[0], with_cp=False)
    torch.manual_seed(0)
    model = build(small)
    model.init_weights()
    model.train()
    model.backbone = RandomFeatures(widths, strides, 2 if bb['type'] == 'CBInternImage' else 1)
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(num_gt, 2, generator=gen) * torch.tensor([w * 0.7, h * 0.7])
    wh = torch.rand(num_gt, 2, generator=gen) * torch.tensor([w * 0.3, h * 0.3]) + 16
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), pad_shape=(h, w),
                                         batch_input_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                       labels=torch.randint(0, 80, (num_gt, ), generator=gen))
    from mmcv.ops import multi_scale_deform_attn
    original = multi_scale_deform_attn.multi_scale_deformable_attn_pytorch
    _PYTORCH_DEFORM_ATTN[:] = [original]
    if cuda_like:
        multi_scale_deform_attn.multi_scale_deformable_attn_pytorch = cuda_like_deform_attn
    try:
        with SavedTensors(list(model.parameters())) as saved:
            losses = model.loss(torch.zeros(1, 3, h, w), [sample])
    finally:
        multi_scale_deform_attn.multi_scale_deformable_attn_pytorch = original
    assert losses
    nbytes = saved.nbytes
    del losses, saved, model
    gc.collect()
    return nbytes


def largest_group(cfg, model: nn.Module) -> int:
    """Elements of the largest optimizer param group (the multi-tensor AdamW
    temporary)."""
    import copy
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    return max(sum(p.numel() for p in g['params']) for g in wrapper.optimizer.param_groups)


def main(argv: List[str] = None) -> Dict[str, float]:
    args = parse_args(argv)
    import projects.internimage  # noqa: F401  (registers the models)
    cfg = load(args.config)
    h, w = args.shape
    model = build(cfg.model, 'meta')
    params = sum(p.numel() for p in model.parameters())
    backbone_params = sum(p.numel() for p in model.backbone.parameters())
    group = largest_group(cfg, model)
    del model
    bb = dict(cfg.model.backbone)
    if args.check:
        small = dict(bb, channels=32, depths=[2, 2, 6, 2], groups=[2, 4, 8, 16],
                     level2_post_norm_block_ids=[1, 3, 5])
        real = backbone_activations(small, 256, 320, fake=False)
        fake = backbone_activations(small, 256, 320, fake=True)
        print(f'check: saved bytes, real tensors {real}, FakeTensors {fake}: '
              f'{"equal" if real == fake else "DIFFERENT"}')
    backbone = backbone_activations(bb, h, w)
    recompute, block_input = block_recompute(bb, h, w)
    fits = []
    for fh in args.fit_sizes:
        fw = int(round(fh * w / h / 32)) * 32
        fits.append((fh * fw, head_activations(cfg, fh, fw, args.num_gt)))
    xs = torch.tensor([float(p) for p, _ in fits], dtype=torch.float64)
    ys = torch.tensor([float(b) for _, b in fits], dtype=torch.float64)
    design = torch.stack([torch.ones_like(xs), xs], 1)
    a, b = torch.linalg.lstsq(design, ys[:, None]).solution[:, 0]
    fit_err = ((design @ torch.stack([a, b]) - ys).abs() / ys).max().item()
    head = (a + b * h * w).item()

    weights = params * 4
    head_params = params - backbone_params
    transient = recompute + 2 * block_input
    rows = [
        ('parameters (float32)', weights),
        ('AdamW moments (2)', 2 * weights),
        ('gradients (all)', weights),
        (f'backbone activations ({h}x{w}, with_cp)', backbone),
        (f'neck + transformer + losses activations ({a / GIB:.2f} GiB + '
         f'{b * 1e6 / GIB:.3f} GiB per million pixels)', head),
        ('checkpoint recompute of one stage-0 block + its gradients', transient),
    ]
    static = 3 * weights
    # each phase bounds the memory of its part of the step from above
    phases = [
        ('forward end / backward through neck + transformer',
         static + backbone + head + 4 * head_params),
        ('backward through the backbone (all gradients, all its activations)',
         static + weights + backbone + transient),
        ('optimizer step (+ the multi-tensor AdamW temporary)', static + weights + 4 * group),
    ]
    print(f'config: {args.config}\n{params / 1e9:.4f}B parameters; image {h}x{w} '
          f'(padded), 1 per GPU, {args.num_gt} boxes\n')
    for name, value in rows:
        print(f'{name:<72} {value / GIB:8.2f} GiB')
    print(f'(neck/transformer: fit on {len(fits)} sizes, max rel. residual {fit_err:.1e})\n')
    for name, value in phases:
        print(f'peak bound, {name:<60} {value / GIB:8.2f} GiB')
    peak = max(v for _, v in phases)
    print(f'{"estimated peak":<72} {peak / GIB:8.2f} GiB  ({peak / (80 * GIB):.0%} of an '
          '80 GiB A100, before the CUDA context and fragmentation)')
    return dict(params=params, backbone=backbone, head=head, peak=peak,
                phases={name: value for name, value in phases})


if __name__ == '__main__':
    main()
