"""The CPU kernel under every instruction set this machine runs (AVX2 and the
baseline): golden cases and the code paths that depend on the shape."""
import os
import subprocess
import sys

import pytest
import torch

import ops_dcnv3
from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch

from ops_dcnv3.testing import compiled_op
from tests.helpers import (golden_files, load_golden, op_args, random_case, rel_err,
                           requires_compiled)

pytestmark = requires_compiled

ISAS = ops_dcnv3.supported_cpu_isas() if ops_dcnv3.compiled_available() else []


@pytest.fixture(params=ISAS)
def isa(request):
    previous = ops_dcnv3.set_cpu_isa(request.param)
    assert ops_dcnv3.cpu_isa() == request.param
    yield request.param
    ops_dcnv3.set_cpu_isa(previous)


def _run(core, tensors, args, grad=None):
    ins = [t.clone().requires_grad_() for t in tensors]
    out = core(*ins, *args)
    if grad is None:
        grad = torch.cos(torch.arange(out.numel(), dtype=torch.float64)).view_as(out)
    out.backward(grad.to(out.dtype))
    return [out] + [t.grad for t in ins]


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('path', golden_files('op'), ids=lambda p: p.stem)
def test_golden_under_each_isa(path, dtype, isa):
    case = load_golden(path)
    tensors = [case[k].to(dtype) for k in ('input', 'offset', 'mask')]
    results = _run(compiled_op, tensors, op_args(case), case['grad_output'])
    tol = 1e-5 if dtype == torch.float64 else 1e-4
    for got, key in zip(results, ('output', 'grad_input', 'grad_offset', 'grad_mask')):
        assert rel_err(got, case[key]) < tol, key


# Shapes chosen for the kernel's paths: channel runs D of 4-, 2-, 1-vector and
# scalar blocks (and mixes), point counts that leave vector tails, a pixel's
# G * P points spanning several 64-point chunks (a group straddling two), a
# group's P = 81 points in two chunks, and offsets far outside the image.
PATH_CASES = {
    'D1': dict(N=1, H=5, W=6, G=3, D=1),
    'D3': dict(N=2, H=5, W=4, G=2, D=3),
    'D5_k5': dict(N=1, H=6, W=7, G=2, D=5, k=5, pad=2),
    'D8': dict(N=2, H=6, W=5, G=2, D=8),
    'D16': dict(N=2, H=6, W=7, G=4, D=16),
    'D24': dict(N=1, H=5, W=6, G=2, D=24),
    'D32': dict(N=1, H=4, W=5, G=2, D=32),
    'D44': dict(N=1, H=4, W=4, G=1, D=44),
    'G8_P9_straddle': dict(N=1, H=5, W=5, G=8, D=4),
    'k9_P81': dict(N=1, H=9, W=10, G=3, D=8, k=9, pad=4),
    'k1': dict(N=3, H=4, W=6, G=5, D=6, k=1, pad=0),
    'stride2_dil2': dict(N=2, H=9, W=8, G=2, D=16, stride=2, pad=2, dilation=2, offset_scale=2.0),
    'far_offsets': dict(N=1, H=5, W=6, G=2, D=8, spread=40.0),
}


@pytest.mark.parametrize('case', PATH_CASES, ids=list(PATH_CASES))
def test_paths_match_pytorch_float64(case, isa):
    tensors, args = random_case(**PATH_CASES[case], seed=len(case))
    for got, ref in zip(_run(compiled_op, tensors, args), _run(dcnv3_core_pytorch, tensors, args)):
        assert rel_err(got, ref) < 1e-12


@pytest.mark.parametrize('case', ['D16', 'D24', 'G8_P9_straddle', 'k9_P81'])
def test_paths_float32_against_float64(case, isa):
    tensors, args = random_case(**PATH_CASES[case], seed=3)
    ref = _run(dcnv3_core_pytorch, tensors, args)
    got = _run(compiled_op, [t.float() for t in tensors], args)
    for g, r in zip(got, ref):
        assert g.dtype == torch.float32
        assert rel_err(g, r) < 1e-5


def test_isas_agree_in_float32():
    if len(ISAS) < 2:
        pytest.skip('this CPU runs only the baseline kernels')
    tensors, args = random_case(N=2, H=7, W=9, G=4, D=16, dtype=torch.float32, seed=4)
    results = {}
    previous = ops_dcnv3.cpu_isa()
    try:
        for name in ISAS:
            ops_dcnv3.set_cpu_isa(name)
            results[name] = _run(compiled_op, tensors, args)
    finally:
        ops_dcnv3.set_cpu_isa(previous)
    first, *others = results.values()
    for other in others:
        for a, b in zip(first, other):
            assert rel_err(a, b) < 1e-6


def test_points_outside_never_read_the_image(isa):
    """Corners outside the image contribute nothing, even where the image
    holds inf or NaN (the zero row is read instead of a clamped pixel)."""
    tensors, args = random_case(N=1, H=5, W=5, G=1, D=8, seed=5)
    x, off, mask = tensors
    x[0, 0, 0] = float('inf')
    x[0, 4, 4] = float('nan')
    off = torch.full_like(off, 50.0)  # every point far outside
    outs = _run(compiled_op, [x, off, mask], args)
    assert all(torch.equal(t, torch.zeros_like(t)) for t in (outs[0], outs[2], outs[3]))


def test_unknown_isa_is_a_value_error():
    with pytest.raises(ValueError, match='unknown CPU instruction set'):
        ops_dcnv3.set_cpu_isa('sse9')
    assert ops_dcnv3.cpu_isa() in ISAS


def _in_subprocess(code: str, env_isa: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DCNV3_CPU_ISA=env_isa)
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, timeout=120)


def test_environment_variable_picks_the_isa():
    done = _in_subprocess('import ops_dcnv3; print(ops_dcnv3.cpu_isa())', 'baseline')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'baseline'
    bad = _in_subprocess('import ops_dcnv3; ops_dcnv3.cpu_isa()', 'avx9')
    assert bad.returncode != 0
    assert 'unknown CPU instruction set' in bad.stderr
