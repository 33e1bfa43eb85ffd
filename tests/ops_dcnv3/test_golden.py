"""The op and the module against the reference results in tests/data/golden."""
import pytest
import torch

from ops_dcnv3.modules import DCNv3, DCNv3_pytorch

from tests.helpers import (DEVICES, golden_files, load_golden, op_args, op_cores, rel_err,
                           requires_compiled)

# Tolerances of tests/data/golden/README.md: relative error of outputs and gradients.
TOL = {torch.float64: 1e-5, torch.float32: 1e-4}
# float32 on CUDA: the module's linear layers and depthwise convolution in
# full float32 precision, not TF32 (docs/tf32.md).
pytestmark = pytest.mark.usefixtures('no_tf32')


CORES = op_cores()


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('path', golden_files('op'), ids=lambda p: p.stem)
def test_op_golden(path, core, dtype, device):
    case = load_golden(path)
    x, off, mask = (case[k].to(device, dtype).requires_grad_()
                    for k in ('input', 'offset', 'mask'))
    out = core(x, off, mask, *op_args(case))
    out.backward(case['grad_output'].to(device, dtype))
    tol = TOL[dtype]
    assert out.dtype == dtype
    assert rel_err(out, case['output']) < tol
    assert rel_err(x.grad, case['grad_input']) < tol
    assert rel_err(off.grad, case['grad_offset']) < tol
    assert rel_err(mask.grad, case['grad_mask']) < tol


MODULES = [pytest.param(DCNv3, id='DCNv3', marks=requires_compiled),
           pytest.param(DCNv3_pytorch, id='DCNv3_pytorch')]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('module_cls', MODULES)
@pytest.mark.parametrize('path', golden_files('module'), ids=lambda p: p.stem)
def test_module_golden(path, module_cls, dtype, device):
    case = load_golden(path)
    module = module_cls(**case['kwargs']).to(device, dtype).eval()
    module.load_state_dict(case['state_dict'], strict=True)
    x = case['input'].to(device, dtype).requires_grad_()
    out = module(x)
    out.backward(case['grad_output'].to(device, dtype))
    assert rel_err(out, case['output']) < TOL[dtype]
    assert rel_err(x.grad, case['grad_input']) < TOL[dtype]


def test_module_state_dict_keys_match_reference():
    case = load_golden(golden_files('module')[-1])
    module = DCNv3_pytorch(**case['kwargs'])
    assert set(module.state_dict()) == set(case['state_dict'])
