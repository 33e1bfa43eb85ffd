"""Compiled op == pure-PyTorch path on random cases, batches, layouts, dtypes."""
import pytest
import torch

from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch
from ops_dcnv3.modules import DCNv3, DCNv3_pytorch

from tests.helpers import DEVICES, random_case, rel_err, requires_compiled

pytestmark = requires_compiled

RANDOM_CASES = [
    dict(N=2, H=8, W=11, G=4, D=16, k=3),
    dict(N=3, H=9, W=6, G=3, D=5, k=5, pad=2, offset_scale=2.0),
    dict(N=1, H=10, W=10, G=2, D=6, k=3, stride=2, pad=1, dilation=2),
    dict(N=2, H=5, W=7, G=1, D=8, k=1, pad=0, offset_scale=0.5),
    dict(N=2, H=6, W=6, G=6, D=1, k=3, pad=0, dilation=1, spread=20.0),
]


def _both(tensors, args, im2col_step=64):
    outs, grads = [], []
    for core in ('compiled', 'pytorch'):
        ins = [t.clone().requires_grad_() for t in tensors]
        if core == 'compiled':
            out = DCNv3Function.apply(*ins, *args, im2col_step)
        else:
            out = dcnv3_core_pytorch(*ins, *args)
        grad = torch.cos(torch.arange(out.numel(), device=out.device, dtype=out.dtype))
        out.backward(grad.view_as(out))
        outs.append(out)
        grads.append([t.grad for t in ins])
    return outs, grads


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('i', range(len(RANDOM_CASES)))
def test_random_cases_float64(i, device):
    (tensors), args = random_case(**RANDOM_CASES[i], device=device, seed=10 + i)
    (out_c, out_p), (g_c, g_p) = _both(tensors, args)
    assert rel_err(out_c, out_p) < 1e-12
    for a, b in zip(g_c, g_p):
        assert rel_err(a, b) < 1e-10


@pytest.mark.parametrize('batch,im2col_step', [(5, 2), (3, 64), (7, 4), (1, 3)])
def test_any_batch_for_any_im2col_step(batch, im2col_step):
    tensors, args = random_case(N=batch, H=6, W=5, G=2, D=3, seed=batch)
    (out_c, out_p), (g_c, g_p) = _both(tensors, args, im2col_step)
    assert out_c.shape[0] == batch
    assert rel_err(out_c, out_p) < 1e-12
    assert all(rel_err(a, b) < 1e-10 for a, b in zip(g_c, g_p))


def test_non_contiguous_inputs():
    (x, off, mask), args = random_case(N=2, H=6, W=6, G=2, D=4, seed=5)
    # Same values through transposed storage: non-contiguous views.
    x_nc = x.transpose(1, 2).contiguous().transpose(1, 2)
    off_nc = torch.cat([off, off], dim=-1)[..., : off.shape[-1]]
    mask_nc = mask.transpose(1, 2).contiguous().transpose(1, 2)
    assert not (x_nc.is_contiguous() or off_nc.is_contiguous() or mask_nc.is_contiguous())
    ref = DCNv3Function.apply(x, off, mask, *args, 64)
    out = DCNv3Function.apply(x_nc, off_nc, mask_nc, *args, 64)
    assert torch.equal(out, ref)
    assert torch.equal(dcnv3_core_pytorch(x_nc, off_nc, mask_nc, *args), dcnv3_core_pytorch(x, off, mask, *args))


def test_points_far_outside_give_exact_zero():
    (x, off, mask), args = random_case(N=1, H=4, W=4, G=1, D=2, seed=6)
    off = torch.full_like(off, 1e6)
    for out in (DCNv3Function.apply(x, off, mask, *args, 64), dcnv3_core_pytorch(x, off, mask, *args)):
        assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5), (torch.bfloat16, 2e-2),
                                       (torch.float16, 2e-3)], ids=['f32', 'bf16', 'f16'])
def test_reduced_precision_matches_float64(dtype, tol):
    tensors, args = random_case(N=2, H=7, W=8, G=2, D=8, seed=7)
    ref = dcnv3_core_pytorch(*tensors, *args)
    low = [t.to(dtype).requires_grad_() for t in tensors]
    for core in (lambda *a: DCNv3Function.apply(*a, 16), dcnv3_core_pytorch):
        out = core(*low, *args)
        assert out.dtype == dtype
        assert rel_err(out, ref) < tol
        out.float().sum().backward()
        assert all(t.grad is not None and t.grad.dtype == dtype for t in low)
        for t in low:
            t.grad = None


def test_autocast_runs_in_autocast_dtype_with_mixed_inputs():
    tensors, args = random_case(N=1, H=6, W=6, G=2, D=4, dtype=torch.float32, seed=8)
    x, off, mask = (t.clone().requires_grad_() for t in tensors)
    ref = dcnv3_core_pytorch(*tensors, *args)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        # Mixed dtypes as the module produces them under autocast.
        for core in (lambda *a: DCNv3Function.apply(*a, 64), dcnv3_core_pytorch):
            out = core(x.bfloat16(), off, mask, *args)
            assert out.dtype == torch.bfloat16
            assert rel_err(out, ref) < 2e-2
    out.float().sum().backward()
    assert x.grad.dtype == off.grad.dtype == mask.grad.dtype == torch.float32


@pytest.mark.parametrize('cfs,dw', [(False, None), (True, 5)])
def test_modules_identical(cfs, dw):
    torch.manual_seed(0)
    a = DCNv3_pytorch(channels=24, group=3, center_feature_scale=cfs, dw_kernel_size=dw).double()
    for p in a.parameters():  # non-trivial offsets, masks and scales
        torch.nn.init.normal_(p, std=0.3)
    b = DCNv3(channels=24, group=3, center_feature_scale=cfs, dw_kernel_size=dw).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 7, 24, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = a(xa), b(xb)
    ya.sum().backward()
    yb.sum().backward()
    assert rel_err(yb, ya) < 1e-12
    assert rel_err(xb.grad, xa.grad) < 1e-10
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert rel_err(pb.grad, pa.grad) < 1e-10, n


def test_module_under_autocast_keeps_one_dtype():
    module = DCNv3(channels=16, group=2)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 5, 5, 16)
    ref = module(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref) < 3e-2
