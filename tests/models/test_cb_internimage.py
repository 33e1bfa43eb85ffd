"""The composite backbone CB-InternImage: where its connections are zero, its
two backbones are two plain InternImage runs; where they are not, each lead
stage receives the assisting stages as CBNetV2's dense composition says;
options, errors, initialisation and layer ids."""
import pytest
import torch

from projects.internimage import CBInternImage, InternImage
from projects.internimage.models.cb_internimage import composite_out_indices
from ops_dcnv3.testing import perturb_offsets
from tests.helpers import core_op_params

#: CB-InternImage-H's options at the tiny size (width 16, depths 1-1-2-1).
TINY_H = dict(arch='h', channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8],
              level2_post_norm_block_ids=[1], drop_path_rate=0.)


def tiny_cb(core_op='DCNv3_pytorch', **kwargs) -> CBInternImage:
    torch.manual_seed(0)
    model = CBInternImage(**dict(TINY_H, core_op=core_op, **kwargs))
    for branch in model.cb_modules:
        perturb_offsets(branch)
    return model.eval()


def plain_runs(model: CBInternImage, out_indices):
    """Two plain InternImage backbones with the composite's weights: the
    assisting one, and the lead one on the assisting one's stem."""
    assist, lead = model.cb_modules
    settings = dict(TINY_H, core_op=assist.settings['core_op'], out_indices=out_indices)
    first, second = InternImage(**settings).eval(), InternImage(**settings).eval()
    first.load_state_dict(assist.state_dict())
    state = {k: v for k, v in lead.state_dict().items() if not k.startswith('gamma')}
    state.update({k: v for k, v in assist.state_dict().items() if k.startswith('patch_embed.')})
    second.load_state_dict(state)
    return first, second


@pytest.mark.parametrize('core_op', core_op_params())
def test_zero_connections_give_two_plain_runs(core_op):
    """At initialisation (gammas zero; the 1x1 convs random) both outputs
    equal plain InternImage runs exactly, at every stage."""
    model = tiny_cb(core_op, out_indices=(0, 1, 2, 3))
    assert all(getattr(model.cb_modules[1], f'gamma{i}').abs().sum() == 0 for i in range(4))
    first, second = plain_runs(model, (0, 1, 2, 3))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assist, lead = model(x)
        for got, want in zip(assist, first(x)):
            assert torch.equal(got, want)
        for got, want in zip(lead, second(x)):
            assert torch.equal(got, want)
        # the lead backbone differs from the assisting one (own weights)
        assert not torch.allclose(assist[-1], lead[-1])


@pytest.mark.parametrize('stage', [1, 2, 3])
def test_connections_reach_the_lead_stages_from_their_own_on(stage):
    """A non-zero gamma at one stage changes the lead outputs from that stage
    on; the earlier lead stages and every assisting stage stay plain runs."""
    model = tiny_cb(out_indices=(0, 1, 2, 3))
    with torch.no_grad():
        getattr(model.cb_modules[1], f'gamma{stage}').fill_(0.5)
    first, second = plain_runs(model, (0, 1, 2, 3))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assist, lead = model(x)
        for got, want in zip(assist, first(x)):
            assert torch.equal(got, want)
        for i, (got, want) in enumerate(zip(lead, second(x))):
            if i < stage:
                assert torch.equal(got, want), i
            else:
                assert (got - want).abs().max() > 1e-3, i


def test_composite_inputs_are_the_dense_composition():
    """Lead stage i receives sum_j up(conv_ij(a_{i+j})): checked against a
    direct computation (1x1 conv as einsum, nearest upsampling of 2**j as
    repetition) on a size divisible by 32."""
    model = tiny_cb()
    torch.manual_seed(1)
    # the assisting stage outputs, NHWC, of a 128x192 image (stem 32x48)
    feats = [torch.randn(2, 32 // 2**i, 48 // 2**i, 16 * 2**i) for i in range(4)]
    with torch.no_grad():
        got = model.composite_inputs(feats)
    for i in range(4):
        want = feats[i].clone()
        for j in range(1, 4 - i):
            conv = model.cb_linears[i][j]
            y = torch.einsum('nhwc,oc->nhwo', feats[i + j], conv.weight[:, :, 0, 0]) + conv.bias
            want = want + y.repeat_interleave(2**j, 1).repeat_interleave(2**j, 2)
        torch.testing.assert_close(got[i], want, rtol=1e-5, atol=1e-5)
    assert len(model.cb_linears[3]) == 1  # the last stage: its own level only


def test_any_image_size():
    """Sizes whose stages do not halve exactly (the reference needs the padded
    image to be a multiple of 32): the composite inputs take each lead
    stage's own size."""
    model = tiny_cb()
    with torch.no_grad():
        model.cb_modules[1].gamma2.fill_(1.)
        assist, lead = model(torch.randn(1, 3, 70, 90))
    plain = InternImage(**dict(TINY_H, core_op='DCNv3_pytorch', out_indices=(1, 2, 3)))
    with torch.no_grad():
        shapes = [o.shape for o in plain(torch.randn(1, 3, 70, 90))]
    assert [o.shape for o in assist] == [o.shape for o in lead] == shapes


def test_gammas_learn_from_zero():
    """At zero the gammas get gradients (the connection can open); the 1x1
    convs get none until they do."""
    model = tiny_cb().train()
    assist, lead = model(torch.randn(1, 3, 64, 64))
    sum(o.square().sum() for o in lead).backward()
    for i in range(4):
        assert getattr(model.cb_modules[1], f'gamma{i}').grad.abs().sum() > 0
    assert all(m.weight.grad is None or m.weight.grad.abs().sum() == 0
               for convs in model.cb_linears for m in convs[1:])


def test_out_indices_forms():
    assert composite_out_indices((1, 2, 3)) == (1, 2, 3)
    assert composite_out_indices([(0, 1, 2, 3), (1, 2, 3)]) == (1, 2, 3)
    assert composite_out_indices([[0, 1, 2, 3], [0, 1, 2, 3]]) == (0, 1, 2, 3)
    assert composite_out_indices([(1, 2, 3), (2, 3)]) == (2, 3)  # the reference's trimming
    model = tiny_cb(out_indices=[(0, 1, 2, 3), (1, 2, 3)])
    assist, lead = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in assist] == [o.shape[1] for o in lead] == [32, 64, 128]
    assert model.out_indices == (1, 2, 3)


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_indices=[(1, 2, 3), (1, 2)]), 'same stages'),
    (dict(out_indices=[(0, 1), (2, 3), (3, )]), 'pair'),
    (dict(out_indices=()), 'out_indices'),
    (dict(out_indices=(0, 4)), 'out_indices'),
    (dict(cb_del_stages=2), 'cb_del_stages=2'),
    (dict(cb_zero_init=False), 'cb_zero_init'),
    (dict(pretrained='x.pth'), 'pretrained'),
    (dict(groups=[1, 2, 4, 5]), 'groups'),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CBInternImage(**dict(TINY_H, **kwargs))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\).*\(1, 4, 32, 32\)'):
        tiny_cb()(torch.randn(1, 4, 32, 32))


def test_keys_and_parameters():
    """The reference's module names; one stem; parameters of two backbones
    minus a stem, plus the gammas and the six 1x1 convs."""
    model = tiny_cb()
    keys = list(model.state_dict())
    assert sum(k.startswith('cb_modules.1.patch_embed') for k in keys) == 0
    plain = InternImage(**dict(TINY_H, core_op='DCNv3_pytorch'))
    stem = sum(p.numel() for p in plain.patch_embed.parameters())
    convs = sum(16 * 2**i * 16 * 2**(i + j) + 16 * 2**i
                for i in range(4) for j in range(1, 4 - i))
    expected = 2 * sum(p.numel() for p in plain.parameters()) - stem + 16 * 15 + convs
    assert sum(p.numel() for p in model.parameters()) == expected


def test_pretrained_backbone_starts_both(tmp_path):
    """A Pretrained InternImage checkpoint loads into the assisting backbone
    and its stages are copied into the lead one; the gammas stay zero."""
    plain = InternImage(**dict(TINY_H, core_op='DCNv3_pytorch'))
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / 'internimage_tiny_h.pth'
    torch.save({'model': plain.state_dict()}, path)
    model = CBInternImage(**dict(TINY_H, core_op='DCNv3_pytorch'),
                          init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assist, lead = model.cb_modules
    for key, value in plain.state_dict().items():
        assert torch.equal(assist.state_dict()[key], value), key
        if not key.startswith('patch_embed.'):
            assert torch.equal(lead.state_dict()[key], value), key
    assert all(getattr(lead, f'gamma{i}').abs().sum() == 0 for i in range(4))


def test_layer_ids_are_the_reference_rule():
    """The reference's rule puts every composite parameter in the last layer
    id (it only knows ``backbone.levels`` / ``backbone.patch_embed``)."""
    model = tiny_cb()
    total = sum(TINY_H['depths']) + 2
    for name, _ in model.named_parameters():
        assert model.get_layer_depth('backbone.' + name) == (total - 1, total)
    assert model.num_layers == 5 and model.depths == [1, 1, 2, 1]
