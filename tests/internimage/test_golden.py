"""The backbone against the reference results in ../shared/golden/backbone_*.pt."""
from pathlib import Path
from typing import Dict

import pytest
import torch

from .internimage_utils import GOLDEN_DIR, core_op_params
from projects.internimage import InternImage

CASES = sorted(p.stem for p in GOLDEN_DIR.glob('backbone_*.pt')) or ['backbone_MISSING']
TOLERANCE = {torch.float64: 1e-5, torch.float32: 1e-3}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double() - ref).norm() / ref.norm()).item()


def load_case(golden_dir: Path, case: str) -> Dict:
    path = golden_dir / f'{case}.pt'
    if not path.is_file():
        pytest.fail(f'golden case {path} is missing')
    return torch.load(path, weights_only=False)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32], ids=['f64', 'f32'])
@pytest.mark.parametrize('core_op', core_op_params())
@pytest.mark.parametrize('case', CASES)
def test_backbone_golden(golden_dir, require_core_op, case, core_op, dtype):
    require_core_op(core_op)
    data = load_case(golden_dir, case)
    model = InternImage(core_op=core_op, **data['kwargs'])
    model.load_state_dict(data['state_dict'], strict=True)
    model = model.to(dtype).eval()

    x = data['input'].to(dtype).requires_grad_(True)
    outs = model(x)
    assert len(outs) == len(data['outputs'])
    torch.autograd.backward(outs, [g.to(dtype) for g in data['grad_outputs']])

    tol = TOLERANCE[dtype]
    for i, (out, ref) in enumerate(zip(outs, data['outputs'])):
        assert out.shape == ref.shape and out.dtype == dtype and out.is_contiguous()
        assert rel_err(out, ref) < tol, f'output {i}: rel err {rel_err(out, ref):.2e}'
    err = rel_err(x.grad, data['grad_input'])
    assert err < tol, f'grad_input: rel err {err:.2e}'


def test_golden_state_dict_keys_match_exactly(golden_dir):
    """Same key set as the reference for every style (no extra buffers)."""
    for case in CASES:
        data = load_case(golden_dir, case)
        model = InternImage(core_op='DCNv3_pytorch', **data['kwargs'])
        own = model.state_dict()
        assert set(own) == set(data['state_dict']), case
        for key, value in data['state_dict'].items():
            assert own[key].shape == value.shape, key
