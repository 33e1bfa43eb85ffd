"""Helpers to check and time DCNv3, shared by the tests and the benchmarks
(torch-only):

- :func:`compiled_op`: the compiled op with the core op's 14-argument
  signature (as ``dcnv3_core_pytorch``), so both paths are called alike;
- :func:`perturb_offsets`: random weights for the (zero-initialised) offset
  and mask projections of every DCNv3 module of a model, so that sampling
  positions are fractional and masks not uniform, as in a trained model;
- :func:`rel_err`: ‖out − ref‖ / ‖ref‖ in float64;
- :func:`tf32_disabled`: float32 matmuls and convolutions in full precision
  on CUDA (GPU comparisons of float32 results);
- :mod:`.entry_fuzz`: the fuzz of every entry point reachable from Python,
  each call isolated in a child process;
- seeded random DCNv3 calls for fuzzing (:func:`make_case`,
  :func:`check_case`): the compiled op and the pure-PyTorch path must agree
  on every one of them, special values included, and refuse the same
  invalid calls with the same error. ``tests/ops_dcnv3/test_fuzz.py`` runs a
  few hundred cases, ``benchmarks/fuzz_dcnv3.py`` as many as asked for.

A case is a random geometry (kernel 1-5 either way, stride 1-3, pad 0-3,
dilation 1-3, 1-3 groups of 1-6 channels, batch 0-2, image 1-7 pixels each
way, offset_scale 0.5/1/2/0.7) in float32, float64 or float16. Some cases
carry special values: offsets that are NaN, ±inf, ±1e30, far (±1e4) or put
the point exactly on the border lines y = -1, 0, H - 1, H (likewise x);
masks that are NaN, ±inf or 0; pixels that are NaN or ±inf. Some cases are
invalid (a bool, float, zero, negative or 2**31 integer argument, a NaN or
infinite offset_scale, a numpy array, None, a sparse or meta tensor, a wrong
offset or mask shape, an empty image).
"""
import contextlib
import random
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn


def compiled_op(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                *args: Any, im2col_step: int = 64) -> torch.Tensor:
    """The compiled op with the core op's 14-argument signature (as
    ``dcnv3_core_pytorch``), ``im2col_step`` added.

    Args:
        input, offset, mask: As ``DCNv3Function.apply``'s.
        *args: The 11 scalar arguments (kernel, stride, pad, dilation,
            group, group_channels, offset_scale).
        im2col_step: The reference's batch chunk.
    """
    from ..functions import DCNv3Function
    return DCNv3Function.apply(input, offset, mask, *args, im2col_step)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖ / ‖ref‖, computed in float64 on the CPU."""
    out, ref = out.detach().double().cpu(), ref.detach().double().cpu()
    return ((out - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def perturb_offsets(model: nn.Module, scale: float = 0.05, seed: int = 0) -> nn.Module:
    """Give the offset and mask projections of every DCNv3 module of
    ``model`` (zero at initialisation) random weights; returns ``model``.

    Args:
        model: Any model with ``DCNv3`` / ``DCNv3_pytorch`` modules.
        scale: Standard deviation of the new weights.
        seed: Generator seed (the modules are visited in ``model.modules()``
            order, each one's ``offset`` then ``mask`` parameters).
    """
    from ..modules import DCNv3, DCNv3_pytorch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (DCNv3, DCNv3_pytorch)):
                for p in list(module.offset.parameters()) + list(module.mask.parameters()):
                    p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model

NAN, INF = float('nan'), float('inf')
SCALES = (1.0, 0.5, 2.0, 0.7)
OFFSET_SPECIALS = (NAN, INF, -INF, 1e30, -1e30, 1e4, -1e4, 0.0)
MASK_SPECIALS = (NAN, INF, -INF, 0.0)
PIXEL_SPECIALS = (NAN, INF, -INF)
INVALID_KINDS = ('bool_arg', 'float_arg', 'zero_arg', 'negative_arg', 'huge_arg',
                 'nan_scale', 'inf_scale', 'numpy', 'none', 'sparse', 'meta',
                 'offset_shape', 'mask_shape', 'empty_image')
ARG_NAMES = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w',
             'dilation_h', 'dilation_w', 'group', 'group_channels', 'offset_scale')
#: (rtol, atol) of the comparison per dtype: the two paths sum in different
#: orders (float16 runs in float32 on both and is rounded once at the end).
TOLERANCE = {torch.float64: (1e-9, 1e-11), torch.float32: (1e-4, 1e-5),
             torch.float16: (2e-3, 2e-3)}


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def make_case(seed: int, special_rate: float = 0.4,
              invalid_rate: float = 0.15) -> Dict[str, Any]:
    """Case ``seed``: dict(tensors=[input, offset, mask], args=[11 op args],
    kind='valid' | 'special' | invalid kind, text=a one-line description)."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    while True:
        kh, kw = rng.randint(1, 5), rng.randint(1, 5)
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        ph, pw = rng.randint(0, 3), rng.randint(0, 3)
        dh, dw = rng.randint(1, 3), rng.randint(1, 3)
        H, W = rng.randint(1, 7), rng.randint(1, 7)
        Ho, Wo = _out_size(H, kh, sh, ph, dh), _out_size(W, kw, sw, pw, dw)
        if Ho > 0 and Wo > 0:
            break
    N, G, D = rng.choice((0, 1, 1, 2, 2)), rng.randint(1, 3), rng.randint(1, 6)
    scale = rng.choice(SCALES)
    dtype = rng.choice((torch.float32, torch.float32, torch.float64, torch.float16))
    P = kh * kw
    x = torch.randn(N, H, W, G * D, generator=gen, dtype=torch.float64)
    off = torch.randn(N, Ho, Wo, G * P * 2, generator=gen, dtype=torch.float64) * 2
    mask = torch.rand(N, Ho, Wo, G * P, generator=gen, dtype=torch.float64)
    args: List[Any] = [kh, kw, sh, sw, ph, pw, dh, dw, G, D, scale]
    kind = 'valid'
    r = rng.random()
    if r < special_rate and N > 0:
        kind = 'special'
        _inject_specials(rng, gen, x, off, mask, args, Ho, Wo)
    tensors = [t.to(dtype) for t in (x, off, mask)]
    if special_rate <= r < special_rate + invalid_rate:
        kind = rng.choice(INVALID_KINDS)
        tensors, args = _make_invalid(rng, kind, tensors, args)
    text = (f'seed={seed} {kind} N={N} H={H} W={W} G={G} D={D} '
            f'{dtype} args={args}')
    return dict(tensors=tensors, args=args, kind=kind, text=text)


def _inject_specials(rng: random.Random, gen: torch.Generator, x: torch.Tensor,
                     off: torch.Tensor, mask: torch.Tensor, args: List[Any],
                     Ho: int, Wo: int) -> None:
    """Writes special values into a few elements of x, off and mask."""
    kh, kw, sh, sw, ph, pw, dh, dw, G, D, scale = args
    N, H, W, _ = x.shape
    P = kh * kw
    what = rng.sample(('offset', 'border', 'mask', 'pixel'), rng.randint(1, 3))
    if 'offset' in what:
        hit = torch.rand(off.shape, generator=gen) < rng.choice((0.05, 0.3))
        vals = torch.tensor(OFFSET_SPECIALS, dtype=off.dtype)
        pick = torch.randint(0, len(OFFSET_SPECIALS), off.shape, generator=gen)
        off[hit] = vals[pick][hit]
    if 'border' in what and scale in (1.0, 0.5, 2.0):
        # Offsets that put points exactly on y (or x) = -1, 0, size - 1, size
        # (exact: the scales are powers of two).
        o = off.view(N, Ho, Wo, G, kw, kh, 2)
        hit = torch.rand(o.shape[:-1], generator=gen) < 0.3
        for n, ho, wo, g, i, j in hit.nonzero().tolist():
            axis = rng.randint(0, 1)
            size = (W, H)[axis]
            target = rng.choice((-1, 0, size - 1, size))
            centre = (wo * sw - pw + dw * (kw - 1) // 2, ho * sh - ph + dh * (kh - 1) // 2)[axis]
            tap = (i * dw - dw * (kw - 1) // 2, j * dh - dh * (kh - 1) // 2)[axis]
            o[n, ho, wo, g, i, j, axis] = (target - centre) / scale - tap
    if 'mask' in what:
        hit = torch.rand(mask.shape, generator=gen) < 0.1
        vals = torch.tensor(MASK_SPECIALS, dtype=mask.dtype)
        pick = torch.randint(0, len(MASK_SPECIALS), mask.shape, generator=gen)
        mask[hit] = vals[pick][hit]
    if 'pixel' in what:
        hit = torch.rand(x.shape[:3], generator=gen) < 0.1
        vals = torch.tensor(PIXEL_SPECIALS, dtype=x.dtype)
        pick = torch.randint(0, len(PIXEL_SPECIALS), x.shape[:3], generator=gen)
        x[hit] = vals[pick][hit].unsqueeze(-1).expand(-1, x.shape[-1])


def _make_invalid(rng: random.Random, kind: str, tensors: List[Any],
                  args: List[Any]) -> Tuple[List[Any], List[Any]]:
    tensors, args = list(tensors), list(args)
    i = rng.randrange(10)  # an integer argument
    t = rng.randrange(3)   # a tensor
    if kind == 'bool_arg':
        args[i] = True
    elif kind == 'float_arg':
        args[i] = float(args[i])
    elif kind == 'zero_arg':
        args[i] = 0 if ARG_NAMES[i][:3] != 'pad' else -1
    elif kind == 'negative_arg':
        args[i] = -rng.randint(1, 3)
    elif kind == 'huge_arg':
        args[i] = 2 ** rng.choice((31, 40, 64))
    elif kind == 'nan_scale':
        args[10] = NAN
    elif kind == 'inf_scale':
        args[10] = rng.choice((INF, -INF))
    elif kind == 'numpy':
        tensors[t] = tensors[t].float().numpy()
    elif kind == 'none':
        tensors[t] = None
    elif kind == 'sparse':
        tensors[t] = tensors[t].to_sparse()
    elif kind == 'meta':
        tensors[t] = tensors[t].to('meta')
    elif kind == 'offset_shape':
        tensors[1] = tensors[1][..., :-1]
    elif kind == 'mask_shape':
        tensors[2] = torch.cat([tensors[2], tensors[2][..., :1]], -1)
    elif kind == 'empty_image':
        tensors[0] = tensors[0][:, :0] if rng.random() < 0.5 else tensors[0][:, :, :0]
    return tensors, args


def _call(core: Callable, tensors: List[Any], args: List[Any], backward: bool
          ) -> Tuple[Optional[torch.Tensor], List[Optional[torch.Tensor]], Optional[str]]:
    """(output, grads, None) or (None, [], 'ErrorType: message')."""
    ins = [t.detach().clone().requires_grad_() if isinstance(t, torch.Tensor)
           and t.layout == torch.strided and t.device.type != 'meta' else t for t in tensors]
    try:
        out = core(*ins, *args)
    except (TypeError, ValueError) as exc:
        return None, [], f'{type(exc).__name__}: {exc}'
    grads: List[Optional[torch.Tensor]] = []
    if backward:
        gen = torch.Generator().manual_seed(0)
        go = torch.randn(out.shape, generator=gen).to(out.dtype)
        out.backward(go)
        grads = [t.grad for t in ins]
    return out.detach(), grads, None


def compare(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype,
            exact_specials: bool = True) -> Optional[str]:
    """None when a and b agree: NaN at the same places, the same infinities,
    finite values within TOLERANCE[dtype]; else a description. With
    ``exact_specials=False``, only the places of the non-finite values must
    agree (inf and NaN count as one)."""
    a, b = a.double(), b.double()
    if a.shape != b.shape:
        return f'shapes {tuple(a.shape)} != {tuple(b.shape)}'
    if not exact_specials:
        a = torch.where(torch.isfinite(a), a, NAN)
        b = torch.where(torch.isfinite(b), b, NAN)
    nan_a, nan_b = a.isnan(), b.isnan()
    if not torch.equal(nan_a, nan_b):
        return f'NaN at {int((nan_a & ~nan_b).sum())} / {int((nan_b & ~nan_a).sum())} places only'
    inf_a, inf_b = a.isinf(), b.isinf()
    if not torch.equal(inf_a, inf_b) or not torch.equal(a[inf_a], b[inf_b]):
        return 'infinities differ'
    fin = torch.isfinite(a)
    rtol, atol = TOLERANCE[dtype]
    if not torch.allclose(a[fin], b[fin], rtol=rtol, atol=atol):
        return f'max |diff| {float((a[fin] - b[fin]).abs().max()):.3g}'
    return None


def check_case(case: Dict[str, Any], compiled: Callable, pytorch: Callable,
               backward: bool = True) -> Optional[str]:
    """None when both paths agree on ``case`` (the same error, or the same
    output and gradients); else what differs."""
    tensors, args = case['tensors'], case['args']
    out_c, grads_c, err_c = _call(compiled, tensors, args, backward)
    out_p, grads_p, err_p = _call(pytorch, tensors, args, backward)
    if err_c or err_p:
        if err_c != err_p:
            return f'errors differ: compiled {err_c!r}, pytorch {err_p!r}'
        if case['kind'] in ('valid', 'special'):
            return f'valid call refused: {err_c}'
        return None
    if case['kind'] not in ('valid', 'special'):
        return 'invalid call accepted by both paths'
    dtype = tensors[0].dtype
    problem = compare(out_c, out_p, dtype)
    if problem:
        return f'output: {problem}'
    if case['kind'] == 'valid' and not torch.isfinite(out_c).all():
        return 'output: not finite for finite input'
    # With an infinite mask, a gradient is inf or NaN depending on the order
    # of the sums (inf - inf): only where it is not finite must agree.
    exact = bool(torch.isfinite(tensors[2]).all())
    for name, gc, gp in zip(('input', 'offset', 'mask'), grads_c, grads_p):
        problem = compare(gc, gp, dtype, exact)
        if problem:
            return f'grad of {name}: {problem}'
    return None


#: The float32 precision settings of the API of torch >= 2.9 (attribute
#: paths under torch.backends); 'ieee' is full float32 precision.
FP32_PRECISION_SETTINGS = ('cuda.matmul', 'cudnn.conv', 'cudnn.rnn')


def _backend(path: str) -> Any:
    obj = torch.backends
    for name in path.split('.'):
        obj = getattr(obj, name)
    return obj


@contextlib.contextmanager
def tf32_disabled() -> Iterator[None]:
    """float32 matmuls (cuBLAS) and convolutions (cuDNN) in full float32
    precision, not TF32, inside the block; every setting is restored after.

    cuDNN runs float32 convolutions in TF32 by default on Ampere and newer
    GPUs (docs/tf32.md): float32 results then differ from float64 ones by
    about 1e-3 instead of 1e-7. No effect on the CPU.

    Uses the ``allow_tf32`` flags, which every torch version has and which
    keep both APIs readable (torch >= 2.9 refuses to read
    ``torch.backends.cudnn.allow_tf32`` once conv and RNN were set apart
    through ``fp32_precision``); if they cannot be read because the caller
    mixed the APIs, the ``fp32_precision`` settings are used instead.
    """
    try:
        legacy = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                  torch.get_float32_matmul_precision())
    except RuntimeError:  # the new API was used: stay with it
        legacy = None
    saved = ([] if legacy is not None else
             [(path, _backend(path).fp32_precision) for path in FP32_PRECISION_SETTINGS])
    try:
        if legacy is not None:
            torch.set_float32_matmul_precision('highest')
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        else:
            for path, _ in saved:
                _backend(path).fp32_precision = 'ieee'
        yield
    finally:
        if legacy is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = legacy[:2]
            torch.set_float32_matmul_precision(legacy[2])
        for path, value in reversed(saved):
            _backend(path).fp32_precision = value
