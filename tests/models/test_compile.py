"""torch.compile and torch.export of models on the registered DCNv3 operator.

The compiled DCNv3 is the operator ``torch.ops.ops_dcnv3.dcnv3``, opaque to
the tracers: ``torch.compile(fullgraph=True)`` captures the tiny backbone
and a whole tiny UperNet in one graph each, and ``torch.export`` the backbone.

The compile tests use the ``aot_eager`` backend: Dynamo capture (no graph
break, else ``fullgraph=True`` raises) and AOTAutograd's tracing of the
forward and backward graphs through the operator's fake implementation and
autograd formula are what the registration decides; Inductor's code
generation for the surrounding layers takes minutes on two CPU cores and is
run by ``benchmarks/bench_compile.py``, which also compares its outputs with
eager.
"""
import torch

from ops_dcnv3.testing import perturb_offsets
from tests.helpers import TINY, max_rel_err, requires_compiled

pytestmark = requires_compiled

#: float32 tolerance (max |diff| / max |ref|) between compiled and eager.
TOL = 1e-5


def _tiny_backbone():
    from projects.internimage import InternImage
    torch.manual_seed(0)
    return perturb_offsets(InternImage(**dict(TINY, core_op='DCNv3'))).eval()


def _tiny_upernet():
    from projects.internimage.apis import load_config
    from mmseg.registry import MODELS
    from tests.helpers import REPO_ROOT
    cfg = load_config(str(REPO_ROOT / 'configs' / 'demo' / 'upernet_internimage_demo.py'))
    cfg.model.backbone.init_cfg = None
    assert cfg.model.backbone.get('core_op', 'DCNv3') == 'DCNv3'  # the backbone's default
    torch.manual_seed(0)
    return perturb_offsets(MODELS.build(cfg.model)).eval()


def _outputs_and_grads(model, fn, x):
    """Outputs of ``fn(x)``, then the gradients of a fixed weighted sum of
    them w.r.t. the input and every parameter."""
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    outs = fn(x)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    gen = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)
    loss.backward()
    grads = {'input': x.grad}
    grads.update({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    return [o.detach() for o in outs], grads


def _compare(model, x):
    torch._dynamo.reset()
    eager_outs, eager_grads = _outputs_and_grads(model, model, x)
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager', dynamic=False)
    outs, grads = _outputs_and_grads(model, compiled, x)
    assert len(outs) == len(eager_outs)
    for out, ref in zip(outs, eager_outs):
        assert out.shape == ref.shape
        assert max_rel_err(out, ref) < TOL
    assert set(grads) == set(eager_grads)
    # Every DCNv3 layer got gradients through the operator's backward.
    assert any('.dcn.offset.' in n for n in grads)
    for name, ref in eager_grads.items():
        assert max_rel_err(grads[name], ref) < TOL, name


def _count_dcnv3_calls(graph: torch.fx.Graph) -> int:
    return sum(1 for n in graph.nodes if n.target is torch.ops.ops_dcnv3.dcnv3.default)


def test_compile_backbone_fullgraph_forward_backward():
    _compare(_tiny_backbone(), torch.randn(2, 3, 64, 64))


def test_compile_tiny_upernet_fullgraph_forward_backward():
    model = _tiny_upernet()
    _compare(model, torch.randn(2, 3, 64, 64))


def test_export_backbone():
    model = _tiny_backbone()
    x = torch.randn(2, 3, 64, 48)
    exported = torch.export.export(model, (x, ))
    # One operator node per DCNv3 layer (TINY: 1 + 1 + 2 + 1 blocks).
    assert _count_dcnv3_calls(exported.graph) == sum(TINY['depths'])
    with torch.no_grad():
        ref = model(x)
        outs = exported.module()(x)
    for out, r in zip(outs, ref):
        assert max_rel_err(out, r) < TOL
