"""DCNv3 as a registered operator: torch.ops.ops_dcnv3.dcnv3 (torch.library)."""
import subprocess
import sys

import pytest
import torch

import ops_dcnv3  # noqa: F401  (registers the operators)
from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch
from ops_dcnv3.functions.library import FORWARD_SCHEMA

from tests.helpers import DEVICES, random_case, rel_err, requires_compiled

OP = torch.ops.ops_dcnv3.dcnv3
BACKWARD_OP = torch.ops.ops_dcnv3.dcnv3_backward

#: Geometries for opcheck: stride, padding, dilation, groups, offset scale.
GEOMETRIES = {
    'k3': dict(),
    'stride2_pad0': dict(H=8, W=7, stride=2, pad=0),
    'dilation2_g1': dict(G=1, D=3, dilation=2, pad=2),
    'k5_scale': dict(k=5, pad=2, offset_scale=0.5, G=3, D=2),
}


def test_schema_is_the_agreed_one():
    """ONNX translations are written against this exact schema."""
    schema = str(OP.default._schema)
    assert schema == 'ops_dcnv3::dcnv3' + FORWARD_SCHEMA
    assert schema == (
        'ops_dcnv3::dcnv3(Tensor input, Tensor offset, Tensor mask, int kernel_h, '
        'int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, '
        'int dilation_h, int dilation_w, int group, int group_channels, '
        'float offset_scale, int im2col_step) -> Tensor')
    assert str(BACKWARD_OP.default._schema).endswith('-> (Tensor, Tensor, Tensor)')


@pytest.mark.parametrize('device', DEVICES)
def test_kernels_registered_for_cpu_and_cuda(device):
    key = 'CPU' if device == 'cpu' else 'CUDA'
    for op in (OP, BACKWARD_OP):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op.default.name(), key)
    assert torch._C._dispatch_has_kernel_for_dispatch_key(OP.default.name(), 'Meta')
    if ops_dcnv3.compiled_available():  # the extension's C++ kernels
        for key in ('AutocastCPU', 'AutocastCUDA', 'Autograd'):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(OP.default.name(), key)


@requires_compiled
def test_kernels_are_the_extensions_cpp_kernels():
    """Every kernel but the fake one is registered in C++ by the extension
    (no Python on the call path)."""
    sources = {'CPU': 'dcnv3_op.cpp', 'CUDA': 'dcnv3_op.cpp',
               'Autograd[alias]': 'dcnv3_autograd.cpp', 'AutocastCPU': 'dcnv3_autocast.cpp',
               'AutocastCUDA': 'dcnv3_autocast.cpp'}
    for op, keys in ((OP, list(sources)), (BACKWARD_OP, ['CPU', 'CUDA', 'Autograd[alias]'])):
        dump = torch._C._dispatch_dump(op.default.name()).splitlines()
        assert any(line.startswith('debug: registered at') and '/dcnv3_op.cpp:' in line
                   for line in dump), dump  # the schema
        for key in keys:
            line = next((line for line in dump if line.startswith(key + ':')), '')
            assert f'/{sources[key]}:' in line, (key, line)


@requires_compiled
@pytest.mark.parametrize('device', DEVICES)
def test_non_contiguous_tensors_and_other_grad_dtype(device):
    """The kernels copy what is not contiguous; dcnv3_backward casts a
    grad_output of another floating dtype to the input's."""
    (x, off, mask), args = random_case(N=2, H=6, W=5, device=device)
    grad = torch.randn(2, 6, 5, x.shape[3], dtype=x.dtype, device=device)

    def strided(t):  # same values, channels-first storage
        return t.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)

    nc = [strided(t) for t in (x, off, mask)]
    assert not any(t.is_contiguous() for t in nc)
    assert torch.equal(OP(*nc, *args, 64), OP(x, off, mask, *args, 64))
    ref = BACKWARD_OP(grad, x, off, mask, *args, 64)
    for a, b in zip(BACKWARD_OP(strided(grad), *nc, *args, 64), ref):
        assert torch.equal(a, b)
    for a, b in zip(BACKWARD_OP(grad.float(), x, off, mask, *args, 64),
                    BACKWARD_OP(grad.float().double(), x, off, mask, *args, 64)):
        assert a.dtype == x.dtype and torch.equal(a, b)


@requires_compiled
def test_graph_only_when_a_gradient_is_needed():
    (x, off, mask), args = random_case(N=1, H=4, W=4)
    assert OP(x, off, mask, *args, 64).grad_fn is None
    xg = x.clone().requires_grad_()
    assert OP(xg, off, mask, *args, 64).grad_fn is not None
    with torch.no_grad():
        assert not OP(xg, off, mask, *args, 64).requires_grad
    with torch.inference_mode():
        assert not OP(xg, off, mask, *args, 64).requires_grad


@requires_compiled
def test_forward_mode_ad_raises_error_naming_the_op():
    """No forward derivative: a tangent is refused, not silently dropped."""
    import torch.autograd.forward_ad as fwAD
    (x, off, mask), args = random_case(N=1, H=4, W=4)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.randn_like(x))
        with pytest.raises(RuntimeError, match=r'forward-mode AD.*ops_dcnv3::dcnv3.*DCNv3_pytorch'):
            OP(dual, off, mask, *args, 64)


@requires_compiled
@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', GEOMETRIES)
def test_opcheck(name, device):
    """Schema, fake implementation, autograd registration and AOT dispatch
    (static and dynamic shapes) agree with the real kernel."""
    (x, off, mask), args = random_case(N=2, H=GEOMETRIES[name].get('H', 6),
                                       W=GEOMETRIES[name].get('W', 5),
                                       **{k: v for k, v in GEOMETRIES[name].items()
                                          if k not in ('H', 'W')},
                                       device=device)
    for requires_grad in (False, True):
        ins = [t.clone().requires_grad_(requires_grad) for t in (x, off, mask)]
        torch.library.opcheck(OP.default, (*ins, *args, 64))
    grad_out = torch.randn(x.shape[0], *off.shape[1:3], x.shape[3],
                           dtype=x.dtype, device=device)
    torch.library.opcheck(BACKWARD_OP.default, (grad_out, x, off, mask, *args, 64))


@requires_compiled
def test_op_matches_pytorch_path_and_wrapper():
    (x, off, mask), args = random_case(N=3, spread=5.0)
    ref = dcnv3_core_pytorch(x, off, mask, *args)
    for step in (1, 2, 64):  # any batch size with any im2col_step
        out = OP(x, off, mask, *args, step)
        assert rel_err(out, ref) < 1e-12, step
    assert torch.equal(DCNv3Function.apply(x, off, mask, *args, 64), OP(x, off, mask, *args, 64))


@requires_compiled
def test_autograd_through_the_operator():
    (x, off, mask), args = random_case(N=1, H=4, W=5)
    ins = [t.clone().requires_grad_() for t in (x, off, mask)]
    assert torch.autograd.gradcheck(lambda a, b, c: OP(a, b, c, *args, 2), ins,
                                    eps=1e-6, atol=1e-6)
    # Same gradients as the pure-PyTorch path.
    ref_ins = [t.clone().requires_grad_() for t in (x, off, mask)]
    grad = torch.randn_like(OP(*ins, *args, 2))
    OP(*ins, *args, 2).backward(grad)
    dcnv3_core_pytorch(*ref_ins, *args).backward(grad)
    for a, b in zip(ins, ref_ins):
        assert rel_err(a.grad, b.grad) < 1e-10


@requires_compiled
def test_double_backward_raises_error_naming_the_op():
    (x, off, mask), args = random_case(N=1, H=4, W=4)
    ins = [t.clone().requires_grad_() for t in (x, off, mask)]
    out = OP(*ins, *args, 64)
    grads = torch.autograd.grad(out.pow(2).sum(), ins, create_graph=True)
    with pytest.raises(RuntimeError, match=r'double backward.*ops_dcnv3::dcnv3.*DCNv3_pytorch'):
        sum(g.sum() for g in grads).backward()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_fake_impl_gives_shape_dtype_and_validates(dtype):
    """Meta tensors need no compiled kernel; bad shapes fail while tracing."""
    (x, off, mask), args = random_case(N=2, H=7, W=9, G=2, D=4, stride=2, pad=0,
                                       dtype=dtype, device='meta')
    out = OP(x, off, mask, *args, 64)
    assert out.device.type == 'meta' and out.dtype == dtype
    assert tuple(out.shape) == (2, 3, 4, 8)
    with pytest.raises(ValueError, match=r'offset must have shape \(2, 3, 4, 36\)'):
        OP(x, off[..., :-2], mask, *args, 64)
    with pytest.raises(ValueError, match='im2col_step must be > 0'):
        OP(x, off, mask, *args, 0)


@requires_compiled
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_casts_to_the_autocast_dtype(dtype):
    """Inside torch.autocast the operator itself (called directly, mixed
    input dtypes) runs in the autocast dtype, close to float32."""
    (x, off, mask), args = random_case(N=2, H=6, W=5, dtype=torch.float32, spread=2.0)
    ref = OP(x, off, mask, *args, 64)
    with torch.autocast('cpu', dtype=dtype):
        out = OP(x, off.double(), mask, *args, 64)
        wrapped = DCNv3Function.apply(x.to(dtype), off, mask, *args, 64)
    assert out.dtype == wrapped.dtype == dtype
    assert rel_err(out, ref) < 2e-2 and rel_err(wrapped, ref) < 2e-2
    # Outside autocast: no cast, mixed dtypes are an error that names them.
    with pytest.raises(TypeError, match='same dtype'):
        OP(x, off.double(), mask, *args, 64)


@requires_compiled
def test_autocast_backward_gives_float32_grads():
    (x, off, mask), args = random_case(N=1, H=5, W=5, dtype=torch.float32)
    ins = [t.clone().requires_grad_() for t in (x, off, mask)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = OP(*ins, *args, 64)
    out.float().sum().backward()
    for t in ins:
        assert t.grad is not None and t.grad.dtype == torch.float32
        assert torch.isfinite(t.grad).all()


def test_wrapper_errors_name_the_argument():
    (x, off, mask), args = random_case(N=1, H=4, W=4, dtype=torch.float32)
    bad = list(args)
    bad[0] = 3.0
    with pytest.raises(TypeError, match='kernel_h must be an int'):
        DCNv3Function.apply(x, off, mask, *bad, 64)
    with pytest.raises(TypeError, match='offset must be a torch.Tensor'):
        DCNv3Function.apply(x, None, mask, *args, 64)
    with pytest.raises(ValueError, match='im2col_step must be > 0'):
        DCNv3Function.apply(x, off, mask, *args, -1)


WITHOUT_EXTENSION = """
import importlib.abc, sys


class NotBuilt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == 'ops_dcnv3._C':
            raise ImportError('no module named ops_dcnv3._C (this test)')


sys.meta_path.insert(0, NotBuilt())
import torch, ops_dcnv3
from ops_dcnv3.functions.library import BACKWARD_SCHEMA, FORWARD_SCHEMA
assert not ops_dcnv3.compiled_available(), ops_dcnv3.__file__
op, backward = torch.ops.ops_dcnv3.dcnv3, torch.ops.ops_dcnv3.dcnv3_backward
assert str(op.default._schema) == 'ops_dcnv3::dcnv3' + FORWARD_SCHEMA
assert str(backward.default._schema) == 'ops_dcnv3::dcnv3_backward' + BACKWARD_SCHEMA
args = (3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, 64)
x, off, mask = (torch.empty(1, 5, 4, c, device='meta') for c in (8, 36, 18))
out = op(x, off, mask, *args)
assert out.shape == (1, 5, 4, 8) and out.device.type == 'meta'
try:
    op(*(torch.zeros(t.shape) for t in (x, off, mask)), *args)
except RuntimeError as exc:
    assert 'the compiled op is not built' in str(exc), exc
else:
    raise AssertionError('no error')
print('ok')
"""


def test_without_the_extension_the_operators_trace_and_say_not_built():
    """The package where its compiled extension does not import: the same
    schemas, the fake kernels (tracing, ONNX export), and a clear error
    from the CPU kernel."""
    proc = subprocess.run([sys.executable, '-c', WITHOUT_EXTENSION], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]
