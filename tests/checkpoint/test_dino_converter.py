"""The reference DINO checkpoint converter: the golden key map, errors,
automatic conversion on ``load_from`` and the converter's body."""
import logging
from typing import List

import pytest
import torch
from mmengine.logging import MMLogger

from projects.internimage.checkpoint.converters import (FORMATS, convert_checkpoint,
                                                         convert_file, detect_format)
from projects.internimage.checkpoint.converters.dino import (convert_dino, convert_key,
                                                              is_reference_dino)
from tests.models.golden_models import build_model, load_model_golden, port_config


@pytest.fixture(scope='module')
def golden():
    return load_model_golden('dino')


@pytest.fixture
def reference_file(golden, tmp_path):
    path = tmp_path / 'dino_reference.pth'
    torch.save({'state_dict': golden['state_dict'], 'meta': {'epoch': 12}}, path)
    return path


def test_converter_gives_the_golden_key_map(golden):
    converted = convert_dino(golden['state_dict'])
    assert list(golden['state_dict']) == golden['legacy_keys']
    assert list(zip(golden['state_dict'], converted)) == [tuple(p) for p in golden['port_key_map']]
    for old, new in golden['port_key_map']:
        assert converted[new] is golden['state_dict'][old]


def test_detected_by_keys_only(golden):
    assert detect_format(golden['state_dict']) is FORMATS['dino']
    assert is_reference_dino({'module.' + k: v for k, v in golden['state_dict'].items()})
    # this project's own layout (converted, and the other families) is left alone
    assert detect_format(convert_dino(golden['state_dict'])) is None
    for family in ('mask_rcnn', 'cascade', 'upernet'):
        assert detect_format(load_model_golden(family)['state_dict']) is None


@pytest.mark.parametrize('key', [
    'bbox_head.transformer.reference_points.weight',  # Deformable DETR, not DINO
    'bbox_head.transformer.encoder.layers.0.attentions.0.sampling_offsets.scale',
    'bbox_head.transformer.decoder.layers.0.attentions.2.value_proj.weight',
    'bbox_head.fc_cls.weight',
    'roi_head.bbox_head.fc_cls.weight',
])
def test_unmapped_key_is_an_error_naming_it(golden, key):
    weights = dict(golden['state_dict'])
    weights[key] = torch.zeros(1)
    with pytest.raises(KeyError, match=key.replace('.', r'\.')):
        convert_dino(weights)


def test_ddp_prefix_is_dropped():
    key = 'module.bbox_head.transformer.decoder.layers.3.attentions.1.output_proj.bias'
    assert convert_key(key) == 'decoder.layers.3.cross_attn.output_proj.bias'


def test_convert_checkpoint_keeps_meta(golden):
    checkpoint = {'state_dict': dict(golden['state_dict']), 'meta': {'epoch': 12}}
    out = convert_checkpoint(checkpoint, 'x.pth')
    assert out['meta'] == {'epoch': 12}
    assert set(out['state_dict']) == {new for _, new in golden['port_key_map']}


def load_logging(runner, needle: str) -> List[str]:
    """``runner.load_or_resume()``; the messages it logged that hold ``needle``."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    MMLogger.get_current_instance().addHandler(handler)
    try:
        runner.load_or_resume()
    finally:
        MMLogger.get_current_instance().removeHandler(handler)
    return [r.getMessage() for r in records if needle in r.getMessage()]


def test_load_from_a_reference_file_converts_it(golden, reference_file, tmp_path):
    """The strict runner loads a reference file as it is (converted on the
    fly, then fitting the model exactly) and logs one line."""
    from projects.internimage.checkpoint.strict_load import StrictLoadRunner
    cfg = port_config(golden, 'DCNv3_pytorch')
    runner = StrictLoadRunner(model=cfg.model, work_dir=str(tmp_path / 'work'),
                              load_from=str(reference_file), default_scope='mmdet')
    lines = load_logging(runner, 'reference dino checkpoint')
    assert len(lines) == 1 and str(reference_file) in lines[0], lines
    state = runner.model.state_dict()
    for old, new in golden['port_key_map']:
        assert torch.equal(state[new], golden['state_dict'][old]), new


def test_convert_file_writes_a_strictly_loading_checkpoint(golden, reference_file, tmp_path):
    out = tmp_path / 'sub' / 'dino_mmdet.pth'
    assert convert_file(str(reference_file), str(out), 'dino') == 260
    converted = torch.load(out, map_location='cpu', weights_only=False)
    assert converted['meta'] == {'epoch': 12} and set(converted) == {'state_dict', 'meta'}
    model = build_model(port_config(golden, 'DCNv3_pytorch'), 'mmdet')
    model.load_state_dict(converted['state_dict'], strict=True)


def test_convert_file_refuses_other_checkpoints(golden, tmp_path):
    other = tmp_path / 'mask_rcnn.pth'
    torch.save({'state_dict': load_model_golden('mask_rcnn')['state_dict']}, other)
    out = tmp_path / 'out.pth'
    with pytest.raises(ValueError, match="is not a reference DINO checkpoint: it has no "
                       r"'bbox_head\.transformer\.\*' keys"):
        convert_file(str(other), str(out), 'dino')
    with pytest.raises(FileNotFoundError, match='missing.pth can not be found'):
        convert_file(str(tmp_path / 'missing.pth'), str(out), 'dino')
    bad = dict(golden['state_dict'])
    bad['bbox_head.transformer.pos_trans.weight'] = torch.zeros(1)
    torch.save({'state_dict': bad}, other)
    with pytest.raises(ValueError, match=r'bbox_head\.transformer\.pos_trans\.weight'):
        convert_file(str(other), str(out), 'dino')
    assert not out.exists()
