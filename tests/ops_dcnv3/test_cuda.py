"""The CUDA kernels of ops_dcnv3 (GPU only; skipped without a visible GPU or
without CUDA kernels in the extension).

The golden cases run on CUDA through test_golden.py (its DEVICES include
'cuda' when a GPU is visible). Here: random cases against the pure-PyTorch
path in every dtype, gradcheck, odd batches, vector-width and alignment edge
cases, a > 2^31-element tensor, determinism, autocast and device errors.
"""
from typing import List, Sequence, Tuple

import pytest
import torch

import ops_dcnv3
from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch

from tests.helpers import DEVICES, rel_err

pytestmark = [
    pytest.mark.usefixtures('no_tf32'),  # float32 compared: no TF32 (docs/tf32.md)
    pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA GPU visible'),
    pytest.mark.skipif(not ops_dcnv3.compiled_with_cuda(),
                       reason='ops_dcnv3._C was built without CUDA kernels'),
]

# Relative error ‖out − ref‖ / ‖ref‖ of the compiled op in each dtype against
# the pure-PyTorch path evaluated in float64 on the same (rounded) inputs:
# (output, gradients). Half types accumulate in float32; their error is the
# rounding of the results (2^-11 for float16, 2^-8 for bfloat16).
TOL = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (2e-3, 3e-3),
    torch.bfloat16: (1.5e-2, 2e-2),
}
DTYPES = list(TOL)
DTYPE_IDS = ['f64', 'f32', 'f16', 'bf16']


def make_case(N=2, H=7, W=9, G=2, D=4, kh=3, kw=3, sh=1, sw=1, ph=1, pw=1, dh=1, dw=1,
              offset_scale=1.0, spread=3.0, dtype=torch.float32, device='cuda', seed=0
              ) -> Tuple[List[torch.Tensor], list]:
    """Random input, offset, raw signed mask and grad_output; op arguments.

    For float16/bfloat16 the offsets are n + (2m + 1) / 16 with |n| <= 15:
    exact in both types, and (with offset_scale 0.5, 1 or 2) no sampling
    point falls on an integer coordinate, where the bilinear weights have a
    kink and the reference may take the other one-sided derivative (coarse
    half-precision offsets would hit integers often).
    """
    gen = torch.Generator().manual_seed(seed)
    Ho = (H + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    Wo = (W + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    P = kh * kw
    shapes = [(N, H, W, G * D), (N, Ho, Wo, G * P * 2), (N, Ho, Wo, G * P), (N, Ho, Wo, G * D)]
    scales = [1.0, spread, 1.0, 1.0]
    tensors = [torch.randn(s, generator=gen, dtype=torch.float64) * c
               for s, c in zip(shapes, scales)]
    if dtype in (torch.float16, torch.bfloat16):
        assert offset_scale in (0.5, 1.0, 2.0)
        off = tensors[1]
        n = off.floor().clamp(-15, 15)
        m = torch.randint(0, 8, off.shape, generator=gen, dtype=torch.int64)
        tensors[1] = n + (2 * m + 1) / 16
    tensors = [t.to(device, dtype) for t in tensors]
    return tensors, [kh, kw, sh, sw, ph, pw, dh, dw, G, D, offset_scale]


def run(core: str, tensors: Sequence[torch.Tensor], args: list, im2col_step: int = 64,
        dtype=None):
    """Output and (input, offset, mask) grads of one core for grad_output."""
    x, off, mask, grad = tensors
    # detach() keeps the storage (and so the alignment) of the given tensors.
    ins = [(t.detach() if dtype is None else t.detach().to(dtype)).requires_grad_()
           for t in (x, off, mask)]
    if core == 'compiled':
        out = DCNv3Function.apply(*ins, *args, im2col_step)
    else:
        out = dcnv3_core_pytorch(*ins, *args)
    out.backward(grad.to(out.dtype))
    return out.detach(), [t.grad for t in ins]


def check_against_reference(tensors, args, dtype, im2col_step=64):
    out, grads = run('compiled', tensors, args, im2col_step)
    ref_out, ref_grads = run('pytorch', tensors, args, dtype=torch.float64)
    tol_out, tol_grad = TOL[dtype]
    assert out.dtype == dtype and out.is_cuda
    assert rel_err(out, ref_out) < tol_out, rel_err(out, ref_out)
    for name, g, r in zip(('input', 'offset', 'mask'), grads, ref_grads):
        assert g.dtype == dtype and g.shape == r.shape
        assert rel_err(g, r) < tol_grad, (name, rel_err(g, r))


def test_golden_cases_run_on_cuda():
    """test_golden.py parametrizes its op and module cases over DEVICES."""
    assert 'cuda' in DEVICES


RANDOM_CASES = {
    'D16_k3': dict(N=2, H=8, W=11, G=4, D=16),
    'D5_k5_pad2_os2': dict(N=3, H=9, W=6, G=3, D=5, kh=5, kw=5, ph=2, pw=2, offset_scale=2.0),
    'D6_stride2_dil2': dict(N=1, H=10, W=10, G=2, D=6, sh=2, sw=2, dh=2, dw=2),
    'D8_k1_os0.5': dict(N=2, H=5, W=7, G=1, D=8, kh=1, kw=1, ph=0, pw=0, offset_scale=0.5),
    'D1_far': dict(N=2, H=6, W=6, G=6, D=1, ph=0, pw=0, spread=20.0),
    'D32_G2': dict(N=1, H=9, W=7, G=2, D=32),
    'D3_kh2_kw3_uneven': dict(N=2, H=6, W=7, G=2, D=3, kh=2, kw=3, sh=1, sw=2, ph=0, pw=1,
                              dh=1, dw=2),
    'D200_two_vectors_per_lane': dict(N=1, H=5, W=4, G=1, D=200),
    'D1_k7_chunked_points': dict(N=1, H=9, W=9, G=8, D=1, kh=7, kw=7, ph=3, pw=3),
}


@pytest.mark.parametrize('dtype', DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize('name', RANDOM_CASES)
def test_random_cases_against_pytorch(name, dtype):
    tensors, args = make_case(**RANDOM_CASES[name], dtype=dtype, seed=len(name))
    check_against_reference(tensors, args, dtype)


GRADCHECK_CASES = {
    'D3_k3': dict(N=1, H=4, W=5, G=2, D=3),
    'D4_k3_stride2_dil2_os0.5': dict(N=2, H=5, W=4, G=1, D=4, sh=2, sw=2, ph=2, pw=2,
                                     dh=2, dw=2, offset_scale=0.5),
    'D2_k5_pad2_os2': dict(N=1, H=4, W=4, G=1, D=2, kh=5, kw=5, ph=2, pw=2, offset_scale=2.0),
}


@pytest.mark.parametrize('name', GRADCHECK_CASES)
def test_gradcheck_float64(name):
    (x, off, mask, _), args = make_case(**GRADCHECK_CASES[name], spread=1.3, dtype=torch.float64,
                                        seed=3)
    inputs = [t.requires_grad_() for t in (x, off, mask)]
    # nondet_tol: the input gradient is an atomicAdd scatter, whose order
    # (and so the last bits of a float64 sum) may change between runs.
    assert torch.autograd.gradcheck(lambda a, b, c: DCNv3Function.apply(a, b, c, *args, 2),
                                    inputs, eps=1e-6, atol=1e-5, rtol=1e-4, nondet_tol=1e-12)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('batch,im2col_step', [(5, 2), (7, 4), (1, 3), (3, 64)])
def test_odd_batches(batch, im2col_step, dtype):
    tensors, args = make_case(N=batch, H=6, W=5, G=2, D=3, dtype=dtype, seed=batch)
    check_against_reference(tensors, args, dtype, im2col_step)


def test_cuda_matches_cpu_kernel():
    tensors, args = make_case(N=3, H=7, W=6, G=3, D=5, dtype=torch.float64, seed=11)
    out, grads = run('compiled', tensors, args)
    out_cpu, grads_cpu = run('compiled', [t.cpu() for t in tensors], args)
    assert rel_err(out, out_cpu) < 1e-13
    assert all(rel_err(g, c) < 1e-12 for g, c in zip(grads, grads_cpu))


def misaligned_copy(t: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of t whose data starts one element past an aligned
    allocation (so no vector width > 1 element is aligned)."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    out = buf[1:].view(t.shape)
    out.copy_(t)
    assert out.is_contiguous() and out.data_ptr() % (2 * t.element_size()) != 0
    return out


@pytest.mark.parametrize('dtype', DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize('D', [1, 3, 5, 6, 8, 16, 32])
def test_vector_widths_and_misaligned_pointers(D, dtype):
    tensors, args = make_case(N=2, H=6, W=7, G=2, D=D, dtype=dtype, seed=D)
    check_against_reference(tensors, args, dtype)
    # Misaligned input and grad_output: the scalar fallback, same results.
    x, off, mask, grad = tensors
    shifted = [misaligned_copy(x), off, mask, misaligned_copy(grad)]
    check_against_reference(shifted, args, dtype)
    out_aligned, _ = run('compiled', tensors, args)
    out_shifted, _ = run('compiled', shifted, args)
    # Each output channel sums the same terms in the same order at any width.
    assert torch.equal(out_aligned, out_shifted)
    # The extension directly, with the misaligned grad_output as given.
    from ops_dcnv3._ext import ext
    grads_aligned = ext().dcnv3_backward(x, off, mask, *args, grad, 64)
    grads_shifted = ext().dcnv3_backward(shifted[0], off, mask, *args, shifted[3], 64)
    for a, b in zip(grads_aligned, grads_shifted):
        assert rel_err(b, a) < TOL[dtype][1]


def test_forward_is_deterministic():
    for dtype in (torch.float32, torch.bfloat16):
        (x, off, mask, _), args = make_case(N=2, H=16, W=16, G=4, D=16, dtype=dtype, seed=5)
        a = DCNv3Function.apply(x, off, mask, *args, 64)
        b = DCNv3Function.apply(x, off, mask, *args, 64)
        assert torch.equal(a, b)


def test_empty_batch():
    (x, off, mask, grad), args = make_case(N=0, H=5, W=5, G=2, D=8)
    ins = [t.requires_grad_() for t in (x, off, mask)]
    out = DCNv3Function.apply(*ins, *args, 64)
    assert out.shape == grad.shape
    out.backward(grad)
    assert all(t.grad.shape == t.shape for t in ins)


def test_non_contiguous_inputs():
    (x, off, mask, _), args = make_case(N=2, H=6, W=6, G=2, D=8, seed=9)
    x_nc = x.transpose(1, 2).contiguous().transpose(1, 2)
    off_nc = torch.cat([off, off], dim=-1)[..., : off.shape[-1]]
    assert not (x_nc.is_contiguous() or off_nc.is_contiguous())
    assert torch.equal(DCNv3Function.apply(x_nc, off_nc, mask, *args, 64),
                       DCNv3Function.apply(x, off, mask, *args, 64))


@pytest.mark.parametrize('dtype,tol', [(torch.bfloat16, 2e-2), (torch.float16, 3e-3)],
                         ids=['bf16', 'f16'])
def test_autocast_runs_in_autocast_dtype(dtype, tol):
    (x, off, mask, _), args = make_case(N=1, H=8, W=8, G=2, D=8, dtype=torch.float32, seed=8)
    ins = [t.clone().requires_grad_() for t in (x, off, mask)]
    ref = dcnv3_core_pytorch(x.double(), off.double(), mask.double(), *args)
    with torch.autocast('cuda', dtype=dtype):
        out = DCNv3Function.apply(*ins, *args, 64)
    assert out.dtype == dtype
    assert rel_err(out, ref) < tol
    out.float().sum().backward()
    assert all(t.grad.dtype == torch.float32 for t in ins)


def test_cpu_tensor_mixed_with_cuda_tensor():
    (x, off, mask, _), args = make_case(N=1, H=5, W=5, G=2, D=4)
    with pytest.raises(ValueError, match='same device'):
        DCNv3Function.apply(x, off.cpu(), mask, *args, 64)
    from ops_dcnv3._ext import ext
    with pytest.raises(ValueError, match='same device'):  # the extension's own check
        ext().dcnv3_forward(x, off, mask.cpu(), *args, 64)
    with pytest.raises(ValueError, match='same device'):
        ext().dcnv3_forward(x.cpu(), off, mask, *args, 64)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 GPUs')
def test_tensors_on_different_gpus():
    (x, off, mask, _), args = make_case(N=1, H=5, W=5, G=2, D=4, device='cuda:0')
    with pytest.raises(ValueError, match='same device'):
        DCNv3Function.apply(x, off.to('cuda:1'), mask, *args, 64)
    from ops_dcnv3._ext import ext
    with pytest.raises(ValueError, match='same device'):
        ext().dcnv3_forward(x, off, mask.to('cuda:1'), *args, 64)
    # On the second GPU (not the current device) the op runs there.
    ref = DCNv3Function.apply(x, off, mask, *args, 64)
    out = DCNv3Function.apply(x.to('cuda:1'), off.to('cuda:1'), mask.to('cuda:1'), *args, 64)
    assert out.device == torch.device('cuda:1')
    assert torch.equal(out.cpu(), ref.cpu())


def free_gib() -> float:
    return torch.cuda.mem_get_info()[0] / 2**30


def shifted_identity_case(H: int, W: int, C: int, G: int):
    """bf16 input, zero offsets and a mask that is one-hot at the kernel
    point (i=2, j=2) of a 3x3 kernel (grid offset (+1, +1)), stride 1, pad 1:
    out[h, w] = x[h + 1, w + 1], zero on the last row and column, exactly."""
    x = torch.randn(1, H, W, C, device='cuda', dtype=torch.bfloat16)
    off = torch.zeros(1, H, W, G * 9 * 2, device='cuda', dtype=torch.bfloat16)
    mask = torch.zeros(1, H, W, G, 9, device='cuda', dtype=torch.bfloat16)
    mask[..., 2 * 3 + 2] = 1
    args = [3, 3, 1, 1, 1, 1, 1, 1, G, C // G, 1.0]
    return x, off, mask.view(1, H, W, G * 9), args


def assert_shifted(out: torch.Tensor, x: torch.Tensor, rows: int = 64):
    """out[:, h, w] == x[:, h + 1, w + 1], zero on the last row and column."""
    H = x.shape[1]
    for r in range(0, H - 1, rows):
        r1 = min(r + rows, H - 1)
        assert torch.equal(out[0, r:r1, :-1], x[0, r + 1:r1 + 1, 1:]), f'rows {r}..{r1}'
        assert not out[0, r:r1, -1].any()
    assert not out[0, -1].any()
    assert torch.equal(out[0, -2, -2], x[0, -1, -1])  # the very last input pixel


LARGE = dict(H=1024, W=1024, C=2560, G=40)  # 2.68e9 > 2^31 input elements (D=64)


@pytest.mark.skipif(not torch.cuda.is_available() or free_gib() < 24,
                    reason='needs a GPU with >= 24 GiB free')
def test_large_tensor_forward():
    x, off, mask, args = shifted_identity_case(**LARGE)
    assert x.numel() > 2**31
    with torch.no_grad():
        out = DCNv3Function.apply(x, off, mask, *args, 64)
    assert_shifted(out, x)


@pytest.mark.skipif(not torch.cuda.is_available() or free_gib() < 48,
                    reason='needs a GPU with >= 48 GiB free')
def test_large_tensor_backward():
    x, off, mask, args = shifted_identity_case(**LARGE)
    grad = torch.randn_like(x)  # H == Ho, W == Wo, C == G * D
    from ops_dcnv3._ext import ext
    grad_x, grad_off, grad_mask = ext().dcnv3_backward(x, off, mask, *args, grad, 64)
    del grad_off
    # grad_input[h + 1, w + 1] = grad_output[h, w]: the transpose of the shift.
    H, G = x.shape[1], args[8]
    for r in range(1, H, 64):
        r1 = min(r + 64, H)
        assert torch.equal(grad_x[0, r:r1, 1:], grad[0, r - 1:r1 - 1, :-1]), f'rows {r}..{r1}'
        assert not grad_x[0, r:r1, 0].any()
    assert not grad_x[0, 0].any()
    # grad_mask of point 8 = <grad_output, x shifted> per group; check the
    # pixels around the end of the tensors (and one at the start).
    gm = grad_mask.view(1, H, H, G, 9)
    for h, w in ((0, 0), (H - 2, H - 2), (H - 2, H - 3), (H - 1, H - 1)):
        shifted = x[0, h + 1, w + 1] if h + 1 < H and w + 1 < H else torch.zeros_like(x[0, 0, 0])
        ref = (grad[0, h, w].double() * shifted.double()).view(G, -1).sum(-1)
        assert torch.allclose(gm[0, h, w, :, 8].double(), ref, rtol=2e-2, atol=2e-1)
