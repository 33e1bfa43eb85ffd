"""torch.compile(fullgraph=True) of the DCNv3 module on the registered
operator, on every device: one graph (no break), the eager results.

torch-only (the backbone-level compile tests, tests/models/
test_compile.py, need the OpenMMLab packages). On the CPU the aot_eager
backend (Dynamo and AOTAutograd, no code generation: fast); on CUDA also
Inductor, which generates Triton kernels around the operator.
"""
import pytest
import torch

from ops_dcnv3.modules import DCNv3

from tests.helpers import DEVICES, requires_compiled

pytestmark = [requires_compiled, pytest.mark.usefixtures('no_tf32')]

BACKENDS = [('cpu', 'aot_eager')] + [('cuda', b) for b in ('aot_eager', 'inductor')
                                     if 'cuda' in DEVICES]


def forward_backward(module, x, grad):
    x = x.detach().clone().requires_grad_()
    out = module(x)
    out.backward(grad)
    return [out.detach(), x.grad] + [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize('device,backend', BACKENDS, ids=[f'{d}-{b}' for d, b in BACKENDS])
def test_compiled_module_matches_eager(device, backend):
    torch.manual_seed(0)
    module = DCNv3(channels=16, group=2, offset_scale=1.0)
    with torch.no_grad():  # fractional sampling (offsets and mask start at zero)
        for p in (*module.offset.parameters(), *module.mask.parameters()):
            p.normal_(0, 0.1)
    module = module.to(device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, 9, 16, generator=gen).to(device)
    grad = torch.randn(2, 7, 9, 16, generator=gen).to(device)

    eager = forward_backward(module, x, grad)
    module.zero_grad()
    torch._dynamo.reset()
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        from torch._dynamo.backends.registry import lookup_backend
        return lookup_backend(backend)(gm, example_inputs)

    compiled = torch.compile(module, fullgraph=True, backend=counting_backend, dynamic=False)
    got = forward_backward(compiled, x, grad)
    assert len(graphs) == 1
    for a, b in zip(got, eager):
        if backend == 'aot_eager':  # the same kernels in the same order
            assert torch.equal(a, b)
        else:  # Inductor fuses the ops around the operator
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
