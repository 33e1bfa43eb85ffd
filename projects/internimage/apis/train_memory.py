"""Estimate, without a GPU, the peak GPU memory of one training step of a
DINO config (DINO-H, DINO + CB-InternImage-H) at one image per GPU,
activation checkpointing as the config sets it
(``benchmarks/estimate_train_memory.py`` prints it).

What it adds up (float32 everywhere, as the recipes train):

- parameters, their gradients and AdamW's two moments: counted exactly
  (the model built on the meta device), 4 bytes each; PyTorch's multi-tensor
  AdamW step also makes one temporary of the size of the largest parameter
  group (``sqrt`` of the second moments);
- the backbone's activations kept for the backward pass: every tensor that
  autograd saves (``saved_tensors_hooks``; checkpointed blocks save their
  input), counted once per storage, on FakeTensors of the full image size
  (shapes and strides only, no memory; the count equals that of real
  tensors, :func:`backbone_activations` with ``fake=False``); with the
  compiled DCNv3 op, which saves what the CUDA op saves;
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
import copy
import gc
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn

__all__ = ['SavedTensors', 'TrainMemory', 'backbone_activations', 'block_recompute',
           'head_activations', 'largest_group', 'estimate_train_memory']


class SavedTensors:
    """Bytes of the storages autograd saves for the backward pass inside the
    context, each storage once, parameters excluded.

    Args:
        exclude: Tensors not to count (the parameters).
        fake: The tensors are FakeTensors (storages told apart by identity,
            not by address).
    """

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
        """The bytes of the storages saved so far."""
        return sum(n for n, _ in self.storages.values())


def build(model_cfg, device: str = 'cpu') -> nn.Module:
    """Build a detector config on ``device`` (``'meta'``: no memory)."""
    from mmdet.registry import MODELS
    with torch.device(device):
        return MODELS.build(copy.deepcopy(model_cfg))


def on_fake(module_cfg: dict, run: Callable[[nn.Module], None], fake: bool = True) -> int:
    """Build ``module_cfg`` (a backbone) on FakeTensors (or real CPU
    tensors) and return the bytes ``run(module)`` saves for backward.

    Args:
        module_cfg: The module's config (registered in mmdet's scope).
        run: Runs the module in training mode.
        fake: FakeTensors (no memory); False: real CPU tensors.
    """
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


def backbone_activations(backbone_cfg: dict, h: int, w: int, fake: bool = True) -> int:
    """Bytes a backbone saves for backward on one ``h`` x ``w`` image.

    Args:
        backbone_cfg: The backbone's config.
        h: Image height.
        w: Image width.
        fake: Count on FakeTensors (False: real tensors).
    """
    return on_fake(backbone_cfg, lambda m: m(torch.empty(1, 3, h, w)), fake)


def block_recompute(backbone_cfg: dict, h: int, w: int) -> Tuple[int, int]:
    """Bytes one block of stage 0 (the widest activations) saves without
    checkpointing, and the size of its input, on one ``h`` x ``w`` image.

    Args:
        backbone_cfg: The backbone's config (InternImage or CBInternImage).
        h: Image height.
        w: Image width.
    """
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
    """mmcv's ``multi_scale_deformable_attn_pytorch``, saving what its CUDA
    op saves (same arguments)."""
    starts = torch.cat([spatial_shapes.new_zeros(1),
                        spatial_shapes.prod(1).cumsum(0)[:-1]])
    return _CudaLikeDeformAttn.apply(value, spatial_shapes, starts, sampling_locations,
                                     attention_weights)


class RandomFeatures(nn.Module):
    """The backbone's outputs as random leaf tensors of the right shapes
    (one tuple per backbone for a composite one).

    Args:
        widths: The channels of each returned stage.
        strides: The stride of each returned stage.
        branches: The number of backbones (2: a composite one).
    """

    def __init__(self, widths: Sequence[int], strides: Sequence[int], branches: int) -> None:
        super().__init__()
        self.widths, self.strides, self.branches = widths, strides, branches

    def forward(self, x: torch.Tensor):
        """Random features for the images ``x`` (N, 3, H, W)."""
        n, _, h, w = x.shape
        feats = [tuple(torch.randn(n, c, -(-h // s), -(-w // s), requires_grad=True)
                       for c, s in zip(self.widths, self.strides))
                 for _ in range(self.branches)]
        return tuple(feats) if self.branches > 1 else feats[0]


def head_activations(cfg, h: int, w: int, num_gt: int, cuda_like: bool = True) -> int:
    """Bytes the neck, transformer and losses save for backward (real CPU
    tensors), the backbone replaced by random features; with ``cuda_like``,
    the deformable attentions save what mmcv's CUDA op saves.

    Args:
        cfg: The detector's config.
        h: Image height.
        w: Image width.
        num_gt: Ground-truth boxes in the image.
        cuda_like: Count what mmcv's CUDA deformable attention saves.
    """
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from ..models.model_checks import backbone_out_channels, backbone_out_indices
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
    temporary).

    Args:
        cfg: The config (its ``optim_wrapper``).
        model: The model (on the meta device will do).
    """
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    return max(sum(p.numel() for p in g['params']) for g in wrapper.optimizer.param_groups)


@dataclass
class TrainMemory:
    """An estimate of :func:`estimate_train_memory`; sizes in bytes.

    Attributes:
        params: The model's parameters (elements).
        shape: The padded training image (H, W).
        parts: ``(what, bytes)`` of each part counted.
        phases: ``(part of the step, bytes)``: the bound of each.
        head_fit: ``(a, b, max relative residual)`` of the neck/transformer
            fit ``a + b * pixels``.
        peak: The largest bound.
    """
    params: int
    shape: Tuple[int, int]
    parts: List[Tuple[str, float]]
    phases: List[Tuple[str, float]]
    head_fit: Tuple[float, float, float]
    peak: float


def estimate_train_memory(cfg, shape: Sequence[int] = (1824, 2016), num_gt: int = 20,
                          fit_sizes: Sequence[int] = (320, 384, 448)) -> TrainMemory:
    """The peak memory of one training step of ``cfg`` at one image per GPU
    (see the module docstring).

    Args:
        cfg: A DINO config, loaded (its task scope registered).
        shape: The padded training image (H, W); the default is the largest
            of the Objects365 recipes, 1800 x 2000 padded to a multiple of 32.
        num_gt: Boxes per image (they set the denoising queries).
        fit_sizes: Image heights of the neck/transformer fit (widths in the
            ratio of ``shape``).

    Raises:
        ValueError: ``shape`` is not two positive sizes, or fewer than two
            fit sizes.
    """
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f'shape must be (H, W), got {tuple(shape)}')
    if len(set(fit_sizes)) < 2:
        raise ValueError(f'fit_sizes needs two sizes at least, got {tuple(fit_sizes)}')
    h, w = shape
    model = build(cfg.model, 'meta')
    params = sum(p.numel() for p in model.parameters())
    backbone_params = sum(p.numel() for p in model.backbone.parameters())
    group = largest_group(cfg, model)
    del model
    bb = dict(cfg.model.backbone)
    backbone = backbone_activations(bb, h, w)
    recompute, block_input = block_recompute(bb, h, w)
    fits = []
    for fh in fit_sizes:
        fw = int(round(fh * w / h / 32)) * 32
        fits.append((fh * fw, head_activations(cfg, fh, fw, num_gt)))
    xs = torch.tensor([float(p) for p, _ in fits], dtype=torch.float64)
    ys = torch.tensor([float(b) for _, b in fits], dtype=torch.float64)
    design = torch.stack([torch.ones_like(xs), xs], 1)
    a, b = torch.linalg.lstsq(design, ys[:, None]).solution[:, 0]
    fit_err = ((design @ torch.stack([a, b]) - ys).abs() / ys).max().item()
    head = (a + b * h * w).item()

    weights = params * 4
    head_params = params - backbone_params
    transient = recompute + 2 * block_input
    parts = [
        ('parameters (float32)', weights),
        ('AdamW moments (2)', 2 * weights),
        ('gradients (all)', weights),
        (f'backbone activations ({h}x{w}, with_cp)', backbone),
        ('neck + transformer + losses activations', head),
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
    return TrainMemory(params=params, shape=(h, w), parts=parts, phases=phases,
                       head_fit=(a.item(), b.item(), fit_err),
                       peak=max(v for _, v in phases))
