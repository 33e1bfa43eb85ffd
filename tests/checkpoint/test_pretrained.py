"""Loading reference checkpoint layouts through init_cfg=Pretrained."""
import logging

import pytest
import torch

import projects.internimage.checkpoint.pretrained as ckpt_mod
from tests.helpers import TINY
from projects.internimage import InternImage
from projects.internimage.checkpoint.pretrained import strip_prefixes, summarize_keys


def tiny(**kwargs) -> InternImage:
    cfg = dict(TINY, core_op='DCNv3_pytorch')
    cfg.update(kwargs)
    return InternImage(**cfg)


@pytest.fixture
def logs(monkeypatch):
    """(level, message) of every print_log call of the loader."""
    records = []
    monkeypatch.setattr(ckpt_mod, 'print_log',
                        lambda msg, logger=None, level=logging.INFO: records.append(
                            (level, msg)))
    return records


def source_weights():
    torch.manual_seed(0)
    src = tiny()
    for p in src.parameters():
        p.data.normal_()
    return {k: v.clone() for k, v in src.state_dict().items()}


def classifier_keys():
    return {'conv_head.0.weight': torch.randn(4, 128, 1, 1), 'conv_head.1.bias': torch.zeros(4),
            'head.weight': torch.randn(10, 4), 'head.bias': torch.zeros(10),
            'clip_projector.q.weight': torch.randn(2, 2), 'fc_norm.weight': torch.ones(4)}


LAYOUTS = {
    'model_with_classifier': lambda sd: {'model': {**sd, **classifier_keys()},
                                         'epoch': 300},
    'state_dict_backbone_prefix': lambda sd: {
        'meta': {'mmdet_version': '2.28.1'}, 'optimizer': {},
        'state_dict': {**{f'backbone.{k}': v for k, v in sd.items()},
                       'neck.lateral_convs.0.conv.weight': torch.randn(2, 16, 1, 1),
                       'rpn_head.rpn_conv.bias': torch.zeros(2)}},
    'bare_module_prefix': lambda sd: {f'module.{k}': v for k, v in sd.items()},
}


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_layouts_load_through_init_cfg(tmp_path, logs, layout):
    weights = source_weights()
    path = tmp_path / 'ckpt.pth'
    torch.save(LAYOUTS[layout](weights), path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    own = model.state_dict()
    assert set(own) == set(weights)
    for key, value in weights.items():
        assert torch.equal(own[key], value), key
    assert model.is_init
    warnings = [m for lvl, m in logs if lvl >= logging.WARNING]
    assert not warnings, warnings
    if layout == 'model_with_classifier':
        info = [m for lvl, m in logs if 'classifier' in m]
        assert len(info) == 1 and 'expected' in info[0] and 'conv_head' in info[0]


def test_missing_layer_scale_is_expected_and_starts_at_one(tmp_path, logs):
    src = tiny(layer_scale=None)
    path = tmp_path / 'cls.pth'
    torch.save({'model': {**src.state_dict(), **classifier_keys()}}, path)
    model = tiny(layer_scale=1.0, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    gammas = [p for n, p in model.named_parameters() if 'gamma' in n]
    assert len(gammas) == 10 and all(torch.all(g == 1.0) for g in gammas)
    assert not [m for lvl, m in logs if lvl >= logging.WARNING]
    line = [m for lvl, m in logs if 'layer-scale' in m]
    assert len(line) == 1 and '10 layer-scale key(s)' in line[0]


def test_unexpected_and_missing_keys_warn_with_strict_false(tmp_path, logs):
    weights = source_weights()
    weights.pop('levels.3.norm.0.weight')
    weights['levels.9.something'] = torch.zeros(1)
    path = tmp_path / 'odd.pth'
    torch.save(weights, path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path), strict=False))
    model.init_weights()
    warnings = [m for lvl, m in logs if lvl >= logging.WARNING]
    assert len(warnings) == 2
    assert any('levels.9.something' in m and 'unexpected' in m for m in warnings)
    assert any('levels.3.norm.0.weight' in m and 'missing' in m for m in warnings)
    assert torch.equal(model.state_dict()['levels.2.blocks.1.mlp.fc2.weight'],
                       weights['levels.2.blocks.1.mlp.fc2.weight'])


def _half(sd):
    keys = sorted(sd)
    return {k: sd[k] for k in keys[::2]}


#: Checkpoints that load no backbone key, or leave non-expected keys missing.
#: name -> (make checkpoint from the backbone weights, text the error must hold).
NOT_MATCHING = {
    'nested_module_module': (lambda sd: {f'module.module.{k}': v for k, v in sd.items()},
                             "prefixed with 'module.'"),
    'weights_key': (lambda sd: {'weights': sd}, "top-level keys: weights"),
    'model_state_key': (lambda sd: {'model_state': sd}, 'top-level keys: model_state'),
    'encoder_prefix': (lambda sd: {f'encoder.{k}': v for k, v in sd.items()},
                       "prefixed with 'encoder.'"),
    'empty': (lambda sd: {}, 'top-level keys: '),
    'half_the_keys': (_half, 'missing, first: '),
    'some_gammas_missing': (lambda sd: {k: v for k, v in sd.items()
                                        if k != 'levels.0.blocks.0.gamma1'},
                            'first: levels.0.blocks.0.gamma1'),
}


@pytest.mark.parametrize('case', sorted(NOT_MATCHING))
def test_checkpoint_that_does_not_fit_is_an_error(tmp_path, case):
    make, text = NOT_MATCHING[case]
    weights = source_weights()
    path = tmp_path / f'{case}.pth'
    torch.save(make(weights), path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    msg = str(info.value)
    n_model = len(weights)
    matched = len(make(weights)) if case in ('half_the_keys', 'some_gammas_missing') else 0
    assert str(path) in msg
    assert f'{matched} of its {n_model} tensors matched' in msg, msg
    assert 'missing, first: ' in msg and text in msg, msg
    assert "strict=False" in msg
    if case == 'half_the_keys':
        missing_first = [k for k in weights if k not in make(weights)][0]
        assert missing_first in msg


def test_suggested_prefix_loads(tmp_path):
    weights = source_weights()
    path = tmp_path / 'enc.pth'
    torch.save({f'encoder.{k}': v for k, v in weights.items()}, path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='encoder.'))
    model.init_weights()
    assert torch.equal(model.state_dict()['patch_embed.conv1.weight'],
                       weights['patch_embed.conv1.weight'])


def test_strict_false_loads_what_matches(tmp_path, logs):
    weights = source_weights()
    half = _half(weights)
    path = tmp_path / 'half.pth'
    torch.save(half, path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path), strict=False))
    model.init_weights()
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in half.items())
    assert any(f'{len(weights) - len(half)} key(s) missing' in m
               for lvl, m in logs if lvl >= logging.WARNING)


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_weights_are_refused_naming_the_key(tmp_path, bad):
    weights = source_weights()
    weights['levels.1.blocks.0.mlp.fc1.weight'][0, 0] = bad
    path = tmp_path / 'nan.pth'
    torch.save({'model': weights}, path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r'nan\.pth is not a valid checkpoint: NaN or inf in '
                       r'1 tensor\(s\): levels\.1\.blocks\.0\.mlp\.fc1\.weight \(1 of'):
        model.init_weights()


def test_wrong_shape_is_an_error_and_loads_nothing(tmp_path):
    path = tmp_path / 't_width.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source_weights().items()}},
               path)
    model = tiny(channels=24, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    with pytest.raises(ValueError) as info:
        model.init_weights()
    msg = str(info.value)
    assert 'patch_embed.conv1.weight' in msg and '(8, 3, 3, 3)' in msg and '(12, 3, 3, 3)' in msg
    # Nothing of the checkpoint was copied in (init_weights re-initialised,
    # but no tensor equals the checkpoint's).
    ckpt_sd = source_weights()
    for key, value in model.state_dict().items():
        if key in ckpt_sd and ckpt_sd[key].shape == value.shape and value.numel() > 1:
            assert not torch.equal(ckpt_sd[key], value), key
    assert set(before) == set(model.state_dict())


def test_pretrained_argument_loads(tmp_path, logs):
    weights = source_weights()
    path = tmp_path / 'p.pth'
    torch.save({'model': weights}, path)
    with pytest.warns(UserWarning):
        model = tiny(pretrained=str(path))
    model.init_weights()
    assert torch.equal(model.state_dict()['levels.2.blocks.1.mlp.fc2.weight'],
                       weights['levels.2.blocks.1.mlp.fc2.weight'])


def test_strip_prefixes_and_summary():
    t = torch.zeros(1)
    assert set(strip_prefixes({'module.backbone.a': t, 'module.neck.b': t})) == {'a'}
    assert set(strip_prefixes({'module.a': t, 'head.b': t})) == {'a', 'head.b'}
    keys = [f'levels.{i}.blocks.{j}.gamma1' for i in range(2) for j in range(3)]
    assert summarize_keys(keys + ['head.weight']) == 'levels.*.blocks.*.gamma1 (x6), head.weight'


@pytest.mark.parametrize('name', ['mask_rcnn_tiny', 'upernet_tiny'])
def test_reference_detector_and_segmentor_weights_load_strictly(tmp_path, name):
    """Whole-model weights saved by the reference implementation (mmdet 2.x /
    mmseg 0.x layout: ``backbone.`` keys beside neck and heads) fit a
    T-style backbone with every key, so the strict default accepts them."""
    from tests.helpers import load_golden, MODEL_GOLDEN_DIR
    case = load_golden(name, MODEL_GOLDEN_DIR)
    path = tmp_path / f'{name}.pth'
    torch.save({'state_dict': case['state_dict'], 'meta': {'mmdet_version': '2.28.1'}}, path)
    model = tiny(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    own = model.state_dict()
    backbone = {k[len('backbone.'):]: v for k, v in case['state_dict'].items()
                if k.startswith('backbone.')}
    assert set(backbone) == set(own)
    assert all(torch.equal(own[k], v) for k, v in backbone.items())
