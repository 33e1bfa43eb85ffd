"""The op's edge cases, on both paths: geometry whose 32-bit sums overflow,
special values (NaN/inf offsets, masks and pixels) and empty batches."""
import pytest
import torch

from ops_dcnv3.modules import DCNv3, DCNv3_pytorch

from tests.helpers import DEVICES, op_cores, random_case, rel_err, requires_compiled

CORES = op_cores()
NAN, INF = float('nan'), float('inf')


def _run(core, tensors, args, device='cpu'):
    """Output and the gradients of (input, offset, mask) for grad_output = 1."""
    ins = [t.to(device).clone().requires_grad_() for t in tensors]
    out = core(*ins, *args)
    out.backward(torch.ones_like(out))
    return out.detach(), [t.grad for t in ins]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('axis', ['h', 'w'])
def test_pad_and_dilation_of_2_to_30(core, dtype, axis, device):
    """pad = dilation = 2**30 along one axis (the sums overflow 32 bits): the
    kernel's outer taps land 2**30 pixels away, outside the image, so the
    result is that of the middle row (or column) of taps alone."""
    big = 2 ** 30
    N, H, W, G, D = 2, 5, 6, 2, 3
    (x, off, mask), args = random_case(N=N, H=H, W=W, G=G, D=D, dtype=dtype, seed=3)
    if axis == 'h':
        args[4] = args[6] = big            # pad_h, dilation_h
        middle = [1, 4, 7]                 # p = i * 3 + j with j = 1
        ref_geom = [1, 3, 1, 1, 0, 1, 1, 1]
    else:
        args[5] = args[7] = big            # pad_w, dilation_w
        middle = [3, 4, 5]                 # i = 1
        ref_geom = [3, 1, 1, 1, 1, 0, 1, 1]
    ref_args = ref_geom + args[8:]
    off_ref = off.view(N, H, W, G, 9, 2)[:, :, :, :, middle].reshape(N, H, W, G * 6)
    mask_ref = mask.view(N, H, W, G, 9)[..., middle].reshape(N, H, W, G * 3)

    out, (g_x, g_off, g_mask) = _run(core, (x, off, mask), args, device)
    ref, (r_x, r_off, r_mask) = _run(core, (x, off_ref, mask_ref), ref_args, device)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert out.abs().sum() > 0
    assert rel_err(out, ref) < tol
    assert rel_err(g_x, r_x) < tol
    g_off = g_off.view(N, H, W, G, 9, 2)
    g_mask = g_mask.view(N, H, W, G, 9)
    assert rel_err(g_off[:, :, :, :, middle], r_off.view(N, H, W, G, 3, 2)) < tol
    assert rel_err(g_mask[..., middle], r_mask.view(N, H, W, G, 3)) < tol
    others = [p for p in range(9) if p not in middle]
    assert g_off[:, :, :, :, others].abs().max() == 0
    assert g_mask[..., others].abs().max() == 0


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('value', [NAN, INF, -INF, 1e30, -3e38])
def test_nonfinite_or_far_offsets_touch_no_pixel(core, value, device):
    """A point whose location is NaN, infinite or far outside adds exactly 0
    and has zero gradients: the result equals the same call with that
    point's mask set to 0."""
    (x, off, mask), args = random_case(N=2, H=5, W=6, G=2, D=4, dtype=torch.float32, seed=7)
    gen = torch.Generator().manual_seed(1)
    hit = torch.rand(*mask.shape, generator=gen) < 0.3            # points
    axis = torch.randint(0, 2, mask.shape, generator=gen)          # x or y
    off_bad = off.clone().view(*mask.shape, 2)
    off_bad[hit & (axis == 0), 0] = value
    off_bad[hit & (axis == 1), 1] = value
    mask_ref = torch.where(hit, 0.0, mask)

    out, (g_x, g_off, g_mask) = _run(core, (x, off_bad.view_as(off), mask), args, device)
    ref, (r_x, _, r_mask) = _run(core, (x, off, mask_ref), args, device)
    hit = hit.to(device)
    assert torch.isfinite(out).all()
    assert rel_err(out, ref) < 1e-6
    assert rel_err(g_x, r_x) < 1e-6
    assert torch.isfinite(g_off).all() and torch.isfinite(g_mask).all()
    assert g_off.view(*mask.shape, 2)[hit].abs().max() == 0
    assert g_mask[hit].abs().max() == 0
    assert rel_err(g_mask[~hit], r_mask[~hit]) < 1e-6


def _one_tap_case(H=3, W=4):
    """A 1x1 kernel, no padding, one group of 2 channels, pixels 1, 2, ..."""
    x = torch.arange(1, H * W * 2 + 1, dtype=torch.float32).view(1, H, W, 2)
    off = torch.zeros(1, H, W, 2)
    mask = torch.ones(1, H, W, 1)
    return x, off, mask, [1, 1, 1, 1, 0, 0, 1, 1, 1, 2, 1.0]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('edge', ['top', 'left', 'bottom', 'right'])
@pytest.mark.parametrize('m', [1.0, INF, NAN])
def test_point_on_the_border_line_reads_no_pixel(core, edge, m, device):
    """Points at y = -1, x = -1, y = H or x = W lie outside the image: they
    read no pixel (NaN in the nearest row or column stays out) and add
    exactly 0 whatever their mask."""
    x, off, mask, args = _one_tap_case()
    H, W = x.shape[1:3]
    ho = torch.arange(H, dtype=torch.float32).view(1, H, 1)
    wo = torch.arange(W, dtype=torch.float32).view(1, 1, W)
    if edge == 'top':
        x[:, 0] = NAN
        off[..., 1] = -1 - ho
    elif edge == 'left':
        x[:, :, 0] = NAN
        off[..., 0] = -1 - wo
    elif edge == 'bottom':
        x[:, H - 1] = NAN
        off[..., 1] = H - ho
    else:
        x[:, :, W - 1] = NAN
        off[..., 0] = W - wo
    mask[:] = m
    out = core(x.to(device), off.to(device), mask.to(device), *args)
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('sign', [1.0, -1.0])
@pytest.mark.parametrize('where', ['on_pixel', 'half_outside', 'corner_outside'])
def test_infinite_mask_gives_infinity(core, sign, where, device):
    """mask = ±inf multiplies the bilinear sample, which is positive here:
    the result is ±inf, not NaN (no 0 * inf from corners outside the image
    or corners of zero weight)."""
    x, off, mask, args = _one_tap_case()
    if where == 'half_outside':
        off[..., 1] = -0.5 - torch.arange(3.0).view(1, 3, 1)   # y = -0.5
    elif where == 'corner_outside':
        off[..., 0] = -0.25 - torch.arange(4.0).view(1, 1, 4)   # x = -0.25
        off[..., 1] = -0.25 - torch.arange(3.0).view(1, 3, 1)   # y = -0.25
    mask[:] = sign * INF
    out = core(x.to(device), off.to(device), mask.to(device), *args)
    assert torch.equal(out, torch.full_like(out, sign * INF))


@pytest.mark.parametrize('core', CORES)
def test_infinite_mask_on_zero_sample_is_nan(core):
    """inf * 0 where the bilinear sample itself is 0 (a zero pixel): NaN in
    both paths, as in IEEE arithmetic."""
    x, off, mask, args = _one_tap_case()
    x[:] = 0
    mask[:] = INF
    assert torch.isnan(core(x, off, mask, *args)).all()


@pytest.mark.parametrize('core', CORES)
def test_nan_mask_inside_propagates(core):
    """A NaN mask on a point inside the image gives NaN at that pixel only."""
    x, off, mask, args = _one_tap_case()
    mask[0, 1, 2] = NAN
    out = core(x, off, mask, *args)
    assert torch.isnan(out[0, 1, 2]).all()
    out[0, 1, 2] = 0
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('cls', [
    DCNv3_pytorch, pytest.param(DCNv3, marks=requires_compiled)])
def test_module_empty_batch(cls):
    torch.manual_seed(0)
    m = cls(channels=8, group=2, center_feature_scale=True)
    x = torch.randn(0, 5, 6, 8, requires_grad=True)
    y = m(x)
    assert y.shape == (0, 5, 6, 8)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert m.offset.weight.grad is not None and m.offset.weight.grad.abs().sum() == 0


@requires_compiled
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_zero_offsets_same_gradients_on_both_paths(dtype):
    """Zero offsets (the module's initial state) put every point on integer
    coordinates, where the bilinear weight has a kink: both paths take the
    same one-sided derivative there, whatever the image size."""
    from ops_dcnv3.functions import dcnv3_core_pytorch
    from ops_dcnv3.testing import compiled_op
    for H, W in ((5, 7), (6, 3)):
        (x, off, mask), args = random_case(N=1, H=H, W=W, G=2, D=3, dtype=dtype, seed=H)
        off.zero_()
        out_c, grads_c = _run(compiled_op, (x, off, mask), args)
        out_p, grads_p = _run(dcnv3_core_pytorch, (x, off, mask), args)
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        assert rel_err(out_p, out_c) < tol
        for a, b in zip(grads_p, grads_c):
            assert rel_err(a, b) < tol
