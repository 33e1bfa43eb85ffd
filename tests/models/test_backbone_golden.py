"""The backbone against the reference results in tests/data/golden/backbone_*.pt."""
import pytest
import torch

from projects.internimage import InternImage
from tests.helpers import DEVICES, core_op_params, golden_files, load_golden, rel_err

CASES = [p.stem for p in golden_files('backbone')]
TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-3}
# float32 on CUDA in full precision: with cuDNN's default TF32 convolutions
# the tiny post-norm case misses 1e-3 (docs/tf32.md).
pytestmark = pytest.mark.usefixtures('no_tf32')


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('core_op', core_op_params())
@pytest.mark.parametrize('case', CASES)
def test_backbone_golden(require_core_op, case, core_op, dtype, device):
    require_core_op(core_op)
    data = load_golden(case)
    model = InternImage(core_op=core_op, **data['kwargs'])
    model.load_state_dict(data['state_dict'], strict=True)
    model = model.to(device, dtype).eval()

    x = data['input'].to(device, dtype).requires_grad_(True)
    outs = model(x)
    assert len(outs) == len(data['outputs'])
    torch.autograd.backward(outs, [g.to(device, dtype) for g in data['grad_outputs']])

    tol = TOLERANCE[dtype]
    for i, (out, ref) in enumerate(zip(outs, data['outputs'])):
        assert out.shape == ref.shape and out.dtype == dtype and out.is_contiguous()
        assert out.device.type == device
        assert rel_err(out, ref) < tol, f'output {i}: rel err {rel_err(out, ref):.2e}'
    err = rel_err(x.grad, data['grad_input'])
    assert err < tol, f'grad_input: rel err {err:.2e}'


def test_golden_state_dict_keys_match_exactly():
    """Same key set as the reference for every style (no extra buffers)."""
    for case in CASES:
        data = load_golden(case)
        model = InternImage(core_op='DCNv3_pytorch', **data['kwargs'])
        own = model.state_dict()
        assert set(own) == set(data['state_dict']), case
        for key, value in data['state_dict'].items():
            assert own[key].shape == value.shape, key
