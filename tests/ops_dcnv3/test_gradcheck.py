"""Finite-difference gradient checks in float64."""
import pytest
import torch

from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch

from tests.helpers import random_case, requires_compiled

CASES = {
    'k3': dict(N=1, H=4, W=5, G=2, D=3, k=3),
    'k3_stride2_dil2_os0.5': dict(N=2, H=5, W=4, G=1, D=2, k=3, stride=2, pad=2,
                                  dilation=2, offset_scale=0.5),
    'k1_pad0': dict(N=1, H=3, W=3, G=3, D=2, k=1, pad=0),
    'k5_pad2': dict(N=1, H=4, W=4, G=1, D=2, k=5, pad=2, offset_scale=2.0),
}


@requires_compiled
@pytest.mark.parametrize('name', CASES)
def test_gradcheck_compiled(name):
    # Offsets with fractional parts well away from integers (no kinks).
    (x, off, mask), args = random_case(**CASES[name], spread=1.3, seed=3)
    inputs = [t.requires_grad_() for t in (x, off, mask)]
    assert torch.autograd.gradcheck(
        lambda a, b, c: DCNv3Function.apply(a, b, c, *args, 2), inputs,
        eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('name', ['k3', 'k3_stride2_dil2_os0.5'])
def test_gradcheck_pytorch(name):
    (x, off, mask), args = random_case(**CASES[name], spread=1.3, seed=4)
    inputs = [t.requires_grad_() for t in (x, off, mask)]
    assert torch.autograd.gradcheck(lambda a, b, c: dcnv3_core_pytorch(a, b, c, *args),
                                    inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
