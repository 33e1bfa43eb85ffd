"""The reference DINO-H and DINO + CB-InternImage-H checkpoints: their key
sets (``tests/data/reference_keys``) convert key for key and load strictly
into this project's models, on ``load_from`` and through the converter
scripts' body; unmapped keys are errors naming them."""
import json
from typing import Dict

import pytest
import torch
from mmengine.config import Config

from projects.internimage.checkpoint.converters import (FORMATS, convert_checkpoint,
                                                         convert_file, detect_format)
from projects.internimage.checkpoint.converters.cb_dino import (convert_cb_dino,
                                                                is_reference_cb_dino)
from projects.internimage.checkpoint.converters.dino import convert_dino, is_reference_dino
from tests.checkpoint.test_dino_converter import load_logging
from tests.helpers import DATA_DIR, REPO_ROOT
from tests.models.golden_models import build_model, load_model_golden

KEYS = DATA_DIR / 'reference_keys' / 'reference_keys.json'
CONFIGS = {
    'dino_h': REPO_ROOT / 'configs/coco/dino_4scale_internimage_h_objects365_coco_ss.py',
    'cb_dino_h': REPO_ROOT / 'configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ss.py',
}
FORMAT_NAMES = {'dino_h': 'dino', 'cb_dino_h': 'cb_dino'}


@pytest.fixture(scope='module')
def reference_keys():
    return json.loads(KEYS.read_text())


def reference_state_dict(reference_keys, model: str) -> Dict[str, torch.Tensor]:
    """Seeded random tensors of the reference key set's shapes, in its order."""
    gen = torch.Generator().manual_seed(0)
    return {key: torch.randn(shape, generator=gen) for key, shape in reference_keys[model]}


def tiny_config(reference_keys, model: str) -> Config:
    """The port's config at the reference key set's tiny size (the DINO
    golden's head overrides, the key set's backbone)."""
    cfg = Config.fromfile(str(CONFIGS[model]))
    cfg.merge_from_dict(load_model_golden('dino')['port_config_overrides'])
    backbone = reference_keys['backbone']
    cfg.merge_from_dict({
        'model.backbone.depths': backbone['depths'],
        'model.backbone.level2_post_norm_block_ids': backbone['level2_post_norm_block_ids'],
        'model.backbone.core_op': 'DCNv3_pytorch'})
    return cfg


def converted_keys(reference_keys, model: str):
    weights = reference_state_dict(reference_keys, model)
    return weights, FORMATS[FORMAT_NAMES[model]].convert(weights)


def test_key_sets_are_the_reference_models(reference_keys):
    """The fixture's backbone is the tiny InternImage-H (its flags), and the
    composite has two backbones, one stem, four gammas and six 1x1 convs."""
    assert reference_keys['backbone']['res_post_norm']
    assert reference_keys['backbone']['center_feature_scale']
    cb = [k for k, _ in reference_keys['cb_dino_h']]
    plain = [k for k, _ in reference_keys['dino_h']]
    assert sum(k.endswith('patch_embed.conv1.weight') for k in cb) == 1
    assert [k for k in cb if '.gamma' in k and 'blocks' not in k] == [
        f'backbone.cb_modules.1.gamma{i}' for i in range(4)]
    assert len([k for k in cb if 'cb_linears' in k]) == 12
    backbone = [k for k in plain if k.startswith('backbone.')]
    # a second backbone without its 8 stem tensors, 4 gammas, 6 convs' weights and biases
    assert len(cb) == len(plain) + len(backbone) - 8 + 4 + 12
    assert all(k.startswith(('backbone.cb_', 'neck.0.', 'bbox_head.')) for k in cb)


@pytest.mark.parametrize('model', ['dino_h', 'cb_dino_h'])
def test_reference_keys_convert_and_load_strictly(reference_keys, model):
    """Every reference key maps to one key of the port's model; the result
    loads with strict=True, each tensor unchanged."""
    weights, converted = converted_keys(reference_keys, model)
    assert detect_format(weights) is FORMATS[FORMAT_NAMES[model]]
    assert len(converted) == len(weights)
    net = build_model(tiny_config(reference_keys, model), 'mmdet')
    net.load_state_dict(converted, strict=True)
    state = net.state_dict()
    for (old, value), new in zip(weights.items(), converted):
        assert converted[new] is value
        assert torch.equal(state[new], value), new


def test_cb_key_map(reference_keys):
    """Backbone keys are unchanged, the reference's Sequential neck loses
    its ``0.``, the head is DINO's map."""
    weights, converted = converted_keys(reference_keys, 'cb_dino_h')
    pairs = dict(zip(weights, converted))
    for old, new in pairs.items():
        if old.startswith('backbone.'):
            assert new == old
        elif old.startswith('neck.'):
            assert new == 'neck.' + old[len('neck.0.'):]
        else:
            assert new == next(iter(convert_dino({old: None})))
    assert pairs['bbox_head.transformer.level_embeds'] == 'level_embed'
    assert pairs['bbox_head.label_embedding.weight'] == (
        'dn_query_generator.label_embedding.weight')


def test_the_two_layouts_are_told_apart(reference_keys):
    cb = reference_state_dict(reference_keys, 'cb_dino_h')
    plain = reference_state_dict(reference_keys, 'dino_h')
    assert is_reference_cb_dino(cb) and not is_reference_dino(cb)
    assert is_reference_dino(plain) and not is_reference_cb_dino(plain)
    assert is_reference_cb_dino({'module.' + k: v for k, v in cb.items()})
    # converted, the files are this project's own layout
    assert detect_format(convert_cb_dino(cb)) is None
    assert detect_format(convert_dino(plain)) is None


@pytest.mark.parametrize('key', [
    'neck.convs.0.conv.weight',  # a dict neck: not the reference's CB layout
    'neck.1.convs.0.conv.weight',
    'bbox_head.transformer.reference_points.weight',
    'bbox_head.fc_cls.weight',
    'roi_head.bbox_head.fc_cls.weight',
])
def test_unmapped_key_is_an_error_naming_it(reference_keys, key):
    weights = reference_state_dict(reference_keys, 'cb_dino_h')
    weights[key] = torch.zeros(1)
    with pytest.raises(KeyError, match=key.replace('.', r'\.')):
        convert_cb_dino(weights)


def test_load_from_a_reference_cb_file_converts_it(reference_keys, tmp_path):
    """The config's StrictLoadRunner loads a reference CB-DINO file as it is
    (converted on the fly) and logs one line."""
    from projects.internimage import StrictLoadRunner
    weights = reference_state_dict(reference_keys, 'cb_dino_h')
    path = tmp_path / 'cb_dino_reference.pth'
    torch.save({'state_dict': weights, 'meta': {'iter': 20000}}, path)
    cfg = tiny_config(reference_keys, 'cb_dino_h')
    runner = StrictLoadRunner(model=cfg.model, work_dir=str(tmp_path / 'work'),
                              load_from=str(path), default_scope='mmdet')
    lines = load_logging(runner, 'reference cb_dino checkpoint')
    assert len(lines) == 1 and str(path) in lines[0], lines
    state = runner.model.state_dict()
    for old, new in zip(weights, convert_cb_dino(weights)):
        assert torch.equal(state[new], weights[old]), new


@pytest.mark.parametrize('model', ['dino_h', 'cb_dino_h'])
def test_convert_file_writes_a_strictly_loading_checkpoint(reference_keys, model, tmp_path):
    """The converter scripts' body (``convert_file``, with the layout each
    script names) writes a file that loads strictly."""
    weights = reference_state_dict(reference_keys, model)
    src = tmp_path / 'reference.pth'
    torch.save({'state_dict': weights, 'meta': {'iter': 20000}}, src)
    out = tmp_path / 'sub' / 'converted.pth'
    assert convert_file(str(src), str(out), FORMAT_NAMES[model]) == len(weights)
    converted = torch.load(out, map_location='cpu', weights_only=False)
    assert converted['meta'] == {'iter': 20000} and set(converted) == {'state_dict', 'meta'}
    net = build_model(tiny_config(reference_keys, model), 'mmdet')
    net.load_state_dict(converted['state_dict'], strict=True)


def test_convert_file_refuses_other_checkpoints(reference_keys, tmp_path):
    other = tmp_path / 'dino_h.pth'
    torch.save({'state_dict': reference_state_dict(reference_keys, 'dino_h')}, other)
    out = tmp_path / 'out.pth'
    with pytest.raises(ValueError, match="is not a reference CB-DINO checkpoint: it has no "
                       r"'bbox_head\.transformer\.\*' and 'backbone\.cb_modules\.\*' keys"):
        convert_file(str(other), str(out), 'cb_dino')
    with pytest.raises(FileNotFoundError, match='missing.pth can not be found'):
        convert_file(str(tmp_path / 'missing.pth'), str(out), 'cb_dino')
    bad = reference_state_dict(reference_keys, 'cb_dino_h')
    bad['neck.convs.0.conv.weight'] = torch.zeros(1)
    torch.save({'state_dict': bad}, other)
    with pytest.raises(ValueError, match=r"neck\.convs\.0\.conv\.weight"):
        convert_file(str(other), str(out), 'cb_dino')
    assert not out.exists()


def test_converted_checkpoint_keeps_meta(reference_keys):
    weights = reference_state_dict(reference_keys, 'cb_dino_h')
    out = convert_checkpoint({'state_dict': dict(weights), 'meta': {'iter': 1}}, 'x.pth')
    assert out['meta'] == {'iter': 1}
    assert list(out['state_dict']) == list(convert_cb_dino(weights))
