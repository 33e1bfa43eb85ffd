"""bfloat16 autocast on the CPU: CPUAmpOptimWrapper, autocast_modules and
CPUAutocastHook (projects/internimage/engine/cpu_amp.py)."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tests.helpers import TINY, core_op_params, rel_err


class Detectorish(nn.Module):
    """A backbone, then a head that, like mmcv's CPU kernels, takes float32
    only."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        feats = self.backbone(x)
        if feats.dtype != torch.float32:
            raise RuntimeError('expected scalar type Float but found '
                               f'{feats.dtype}')
        return self.head(feats)


def test_registered():
    import projects.internimage  # noqa: F401
    from mmdet.registry import HOOKS as DET_HOOKS
    from mmdet.registry import OPTIM_WRAPPERS as DET_WRAPPERS
    from mmseg.registry import HOOKS as SEG_HOOKS
    from mmseg.registry import OPTIM_WRAPPERS as SEG_WRAPPERS
    from projects.internimage.engine.cpu_amp import CPUAmpOptimWrapper, CPUAutocastHook
    for wrappers, hooks in ((DET_WRAPPERS, DET_HOOKS), (SEG_WRAPPERS, SEG_HOOKS)):
        assert wrappers.get('CPUAmpOptimWrapper') is CPUAmpOptimWrapper
        assert hooks.get('CPUAutocastHook') is CPUAutocastHook


def test_whole_model_autocast_then_float32_update():
    from projects.internimage.engine.cpu_amp import CPUAmpOptimWrapper
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(64, 2))
    before = [p.detach().clone() for p in model.parameters()]
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 3, 6, 6))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().square().mean())
    for old, new in zip(before, model.parameters()):
        assert new.dtype == torch.float32
        assert not torch.equal(old, new)
    assert model(torch.randn(1, 3, 6, 6)).dtype == torch.float32  # outside


def test_named_modules_return_float32_and_are_hooked_once():
    from projects.internimage.engine.cpu_amp import CPUAmpOptimWrapper
    model = Detectorish()
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(RuntimeError, match='Float'):  # whole-model autocast
        with torch.autocast('cpu', dtype=torch.bfloat16):
            model(x)
    seen = []
    model.backbone[0].register_forward_hook(
        lambda m, i, o: seen.append(o.dtype))
    wrapper = CPUAmpOptimWrapper(
        autocast_modules=['backbone'],
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(3):
        with wrapper.optim_context(model):
            out = model(x)
        assert seen[-1] == torch.bfloat16  # the conv ran in bfloat16
        assert out.dtype == torch.float32
    # hooked once (a pre-hook and a hook), not once per step; forward untouched
    assert len(model.backbone._forward_pre_hooks) == len(model.backbone._forward_hooks) == 1
    assert 'forward' not in vars(model.backbone)
    model(x)  # outside the context: float32
    assert seen[-1] == torch.float32


def test_copies_of_a_hooked_model_compute_with_their_own_weights():
    """Hooks, not a replaced forward: a deep copy (an EMA model, say) runs its
    own weights, and the model still pickles."""
    import copy
    import pickle

    from projects.internimage.engine.cpu_amp import CPUAmpOptimWrapper
    model = Detectorish()
    wrapper = CPUAmpOptimWrapper(
        autocast_modules=['backbone'],
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    x = torch.randn(1, 3, 8, 8)
    with wrapper.optim_context(model):
        model(x)
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        with torch.no_grad():
            other.backbone[0].weight.zero_()
            other.backbone[0].bias.zero_()
        assert torch.equal(other.backbone(x), torch.zeros(1, 4, 6, 6))
        assert not torch.equal(model.backbone(x), torch.zeros(1, 4, 6, 6))


def test_bad_arguments():
    from projects.internimage.engine.cpu_amp import CPUAmpOptimWrapper, autocast_modules
    model = Detectorish()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="'neck' not found.*backbone"):
        with autocast_modules(model, ['neck']):
            pass
    with pytest.raises(ValueError, match='loss_scale'):
        CPUAmpOptimWrapper(optimizer=optimizer, loss_scale='dynamic')
    for dtype in ('float16', 'bfloat16'):  # no dtype argument: bfloat16 is the only one
        with pytest.raises(ValueError, match='takes no dtype'):
            CPUAmpOptimWrapper(optimizer=optimizer, dtype=dtype)


def test_autocast_hook():
    from projects.internimage.engine.cpu_amp import CPUAutocastHook
    model = Detectorish()
    runner = SimpleNamespace(model=model)
    hook = CPUAutocastHook(modules=['backbone'])
    seen = []
    model.backbone[0].register_forward_hook(
        lambda m, i, o: seen.append(o.dtype))
    hook.before_test_epoch(runner)
    assert model(torch.randn(1, 3, 8, 8)).dtype == torch.float32
    hook.after_test_epoch(runner)
    model(torch.randn(1, 3, 8, 8))
    assert seen == [torch.bfloat16, torch.float32]


@pytest.mark.parametrize('core_op', core_op_params())
def test_internimage_under_cpu_amp(core_op, require_core_op):
    """A tiny InternImage trains under CPUAmpOptimWrapper: its linear layers
    run in bfloat16, the stage outputs (after float32 norms) are within 2% of
    float32 and the gradients within 2% (relative norms; measured: 0.5-0.8%
    and 0.35%)."""
    require_core_op(core_op)
    from projects.internimage import InternImage
    from projects.internimage.engine.cpu_amp import CPUAmpOptimWrapper
    torch.manual_seed(0)
    model = InternImage(core_op=core_op, **TINY)
    x = torch.randn(2, 3, 64, 64)

    def grads(outs):
        loss = sum(o.float().square().mean() for o in outs)
        model.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()
                          if p.grad is not None])

    ref = model(x)
    ref_grad = grads(ref)
    linear_dtypes = set()
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.register_forward_hook(
                lambda m, i, o: linear_dtypes.add(o.dtype))
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
    with wrapper.optim_context(model):
        outs = model(x)
    assert linear_dtypes == {torch.bfloat16}  # the projections and MLPs
    for o, r in zip(outs, ref):
        assert rel_err(o.float(), r.detach()) < 0.02
    amp_grad = grads(outs)
    assert torch.isfinite(amp_grad).all()
    assert rel_err(amp_grad, ref_grad) < 0.02
