"""Structure, options and initialisation of the InternImage backbone."""
import copy

import pytest
import torch
from torch import nn

from tests.helpers import TINY, compiled_state, core_op_params
from projects.internimage import InternImage
from projects.internimage.models.backbone import drop_path_rates


def tiny(**kwargs) -> InternImage:
    cfg = dict(TINY, core_op='DCNv3_pytorch')
    cfg.update(kwargs)
    return InternImage(**cfg)


def test_outputs_shapes_and_out_indices():
    x = torch.randn(2, 3, 64, 32)
    outs = tiny().eval()(x)
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 8), (2, 32, 8, 4), (2, 64, 4, 2),
                                              (2, 128, 2, 1)]
    assert all(o.is_contiguous() for o in outs)
    model = tiny(out_indices=(1, 3)).eval()
    model.load_state_dict(tiny().state_dict())
    assert [o.shape[1] for o in model(x)] == [32, 128]
    model = tiny(out_indices=(0, )).eval()
    assert len(model(x)) == 1


@pytest.mark.parametrize('kwargs, match', [
    (dict(core_op='DCNv4'), 'core_op'),
    (dict(use_dcn_v4_op=True), 'use_dcn_v4_op'),
    (dict(remove_center=True), 'remove_center'),
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(drop_path_type='cosine'), 'drop_path_type'),
    (dict(groups=[1, 2, 4]), 'groups'),
    (dict(channels=0), r'channels must be a positive int, got 0'),
    (dict(channels=-16), r'channels must be a positive int, got -16'),
    (dict(mlp_ratio=0.), r'mlp_ratio must be a positive number.*got 0\.0'),
    (dict(mlp_ratio=-1), r'mlp_ratio.*got -1'),
    # stage 1 is 32 wide: 3 groups do not divide it; the message names both
    (dict(groups=[1, 3, 4, 8]), r'groups\[1\]=3 .* stage-1 width 32 \(channels=16'),
    (dict(groups=[1, 2, 0, 8]), r'groups\[2\]=0 .* stage-2 width 64'),
    (dict(depths=[1, 0, 2, 1]), r'depths\[1\] must be a positive int, got 0'),
    (dict(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
     'pretrained'),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_harmless_reference_only_arguments_accepted():
    ref = tiny()
    model = tiny(use_dcn_v4_op=False, remove_center=False, use_clip_projector=False,
                 pretrained=None)
    assert set(model.state_dict()) == set(ref.state_dict())
    # The classification-only projector changes no backbone parameter.
    assert set(tiny(use_clip_projector=True).state_dict()) == set(ref.state_dict())


def test_pretrained_argument_becomes_init_cfg():
    with pytest.warns(UserWarning, match='pretrained'):
        model = tiny(pretrained='some.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='some.pth')


@pytest.mark.parametrize('core_op', core_op_params())
def test_core_op_selects_dcn_class(core_op):
    import ops_dcnv3.modules as dcn
    model = tiny(core_op=core_op)
    dcns = [m for m in model.modules() if isinstance(m, (dcn.DCNv3, dcn.DCNv3_pytorch))]
    assert len(dcns) == 5 and all(type(m) is getattr(dcn, core_op) for m in dcns)


@pytest.mark.skipif(compiled_state() == 'not built', reason='compiled op not built')
def test_both_core_ops_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = tiny(core_op='DCNv3_pytorch', center_feature_scale=True, dw_kernel_size=5)
    for p in ref.parameters():  # non-zero offsets so the sampling matters
        p.data.add_(0.05 * torch.randn_like(p))
    model = tiny(core_op='DCNv3', center_feature_scale=True, dw_kernel_size=5)
    model.load_state_dict(ref.state_dict(), strict=True)
    results = []
    for m in (ref.double().eval(), model.double().eval()):
        x = torch.randn(2, 3, 32, 48, dtype=torch.float64, generator=torch.Generator()
                        .manual_seed(1)).requires_grad_(True)
        outs = m(x)
        sum((o * torch.cos(o)).sum() for o in outs).backward()
        results.append((outs, x.grad, [p.grad for p in m.parameters()]))
    (o1, g1, p1), (o2, g2, p2) = results
    for a, b in zip(list(o1) + [g1] + p1, list(o2) + [g2] + p2):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_structure_keys():
    keys = set(tiny(layer_scale=None, res_post_norm=True, level2_post_norm=True,
                    level2_post_norm_block_ids=[1], center_feature_scale=True)
               .state_dict())
    for key in ['patch_embed.conv1.weight', 'patch_embed.norm1.1.weight',
                'patch_embed.conv2.bias', 'patch_embed.norm2.1.bias',
                'levels.0.blocks.0.norm1.0.weight', 'levels.0.blocks.0.norm2.0.weight',
                'levels.0.blocks.0.dcn.dw_conv.1.1.weight', 'levels.0.blocks.0.mlp.fc1.weight',
                'levels.0.blocks.0.res_post_norm1.0.weight', 'levels.2.post_norms.0.0.weight',
                'levels.3.norm.0.weight', 'levels.2.downsample.conv.weight',
                'levels.2.downsample.norm.1.weight',
                'levels.1.blocks.0.dcn.center_feature_scale_proj_weight']:
        assert key in keys, key
    assert not any('gamma' in k or 'post_norms.1' in k or 'levels.3.downsample' in k
                   or 'downsample.conv.bias' in k for k in keys)
    post = set(tiny(post_norm=True).state_dict())  # post-norm: no stage norms
    assert not any('.norm.0.' in k for k in post)
    assert 'levels.0.blocks.0.gamma1' in post


def test_drop_path_rates():
    assert drop_path_rates(0.3, 4) == pytest.approx([0., 0.1, 0.2, 0.3])
    assert drop_path_rates(0.3, 3, 'uniform') == [0.3] * 3
    model = tiny(drop_path_rate=0.4)
    probs = [0. if isinstance(b.drop_path, nn.Identity) else b.drop_path.drop_prob
             for lvl in model.levels for b in lvl.blocks]
    assert probs == pytest.approx([0., 0.1, 0.2, 0.3, 0.4])
    model = tiny(drop_path_rate=0.4, drop_path_type='uniform')
    assert all(b.drop_path.drop_prob == pytest.approx(0.4)
               for lvl in model.levels for b in lvl.blocks)


def test_drop_path_active_in_training_only():
    model = tiny(drop_path_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    a, b = model(x), model(x)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    b = model(x)
    assert not torch.allclose(a[-1], b[-1])


def test_frozen_stages():
    model = tiny(frozen_stages=2, drop_path_rate=0.2)
    model.train()
    frozen = [model.patch_embed, model.levels[0], model.levels[1]]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in model.levels[2:]:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())
    model.train(False)
    model.train(True)
    assert all(not m.training for f in frozen for m in f.modules())
    # Frozen parts get no gradient; the rest does.
    sum(o.sum() for o in model(torch.randn(2, 3, 32, 32))).backward()
    assert all(p.grad is None for f in frozen for p in f.parameters())
    assert all(p.grad is not None for p in model.levels[3].parameters())

    only_stem = tiny(frozen_stages=0).train()
    assert not any(p.requires_grad for p in only_stem.patch_embed.parameters())
    assert all(p.requires_grad for p in only_stem.levels.parameters())
    assert all(p.requires_grad for p in tiny(frozen_stages=-1).parameters())


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = tiny(drop_path_rate=0.3).double().train()
    model = tiny(drop_path_rate=0.3, with_cp=True).double().train()
    model.load_state_dict(ref.state_dict())
    calls = []
    model.levels[0].blocks[0].dcn.register_forward_hook(lambda *_: calls.append(1))
    x0 = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    grads = []
    for m in (ref, model):
        torch.manual_seed(123)
        x = x0.clone().requires_grad_(True)
        outs = m(x)
        sum((o * o).sum() for o in outs).backward()
        grads.append(([o.detach() for o in outs], x.grad, [p.grad for p in m.parameters()]))
    assert len(calls) == 2  # recomputed in backward: checkpointing is in use
    (o1, g1, p1), (o2, g2, p2) = grads
    for a, b in zip(o1 + [g1] + p1, o2 + [g2] + p2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # No checkpointing without gradients.
    calls.clear()
    with torch.no_grad():
        model(x0)
    assert len(calls) == 1


def test_initialisation_order():
    """Linear trunc-normal(0.02) first, then DCNv3's own init (zeros / xavier)."""
    torch.manual_seed(0)
    model = tiny(channels=32, center_feature_scale=True)
    for _ in range(2):  # at construction and again via init_weights()
        blk = model.levels[3].blocks[0]
        assert blk.mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.1)
        assert torch.all(blk.mlp.fc1.bias == 0)
        assert torch.all(blk.norm1[0].weight == 1) and torch.all(blk.norm1[0].bias == 0)
        dcn = blk.dcn
        for p in (dcn.offset.weight, dcn.offset.bias, dcn.mask.weight, dcn.mask.bias,
                  dcn.center_feature_scale_proj_weight, dcn.input_proj.bias):
            assert torch.all(p == 0)
        xavier_std = (2. / (2 * 256))**0.5  # fan_in = fan_out = 256
        assert dcn.input_proj.weight.std().item() == pytest.approx(xavier_std, rel=0.1)
        assert torch.all(blk.gamma1 == 1.0)
        before = blk.mlp.fc1.weight.clone()
        model.init_weights()
        assert not torch.equal(before, blk.mlp.fc1.weight)


def test_deepcopy_and_eval_are_deterministic():
    model = tiny().eval()
    x = torch.randn(1, 3, 32, 32)
    clone = copy.deepcopy(model)
    assert all(torch.equal(a, b) for a, b in zip(model(x), clone(x)))
