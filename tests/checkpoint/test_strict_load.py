"""Wrong checkpoints are refused: a checkpoint of another family or variant
given as ``load_from`` (or ``tools/test.py CONFIG CKPT``) raises an error
naming the mismatching keys and shapes, and leaves the model untouched."""
import pytest
import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from projects.internimage.checkpoint.strict_load import StrictLoadRunner, checkpoint_mismatch
from tests.helpers import REPO_ROOT
from tests.models.golden_models import load_model_golden, port_config

#: The tiny golden backbone at width 24 instead of 16: another "variant".
WIDER = {'model.backbone.channels': 24, 'model.neck.in_channels': [24, 48, 96, 192]}


def tiny_cfg(family: str, **overrides):
    cfg = port_config(load_model_golden(family), 'DCNv3_pytorch')
    cfg.merge_from_dict(overrides)
    return cfg


def checkpoint_file(tmp_path, family: str):
    path = tmp_path / f'{family}.pth'
    torch.save({'state_dict': load_model_golden(family)['state_dict'], 'meta': {}}, path)
    return str(path)


def make_runner(cfg, tmp_path, load_from: str, runner_type='StrictLoadRunner') -> Runner:
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = load_from
    cfg.runner_type = runner_type
    return RUNNERS.build(cfg)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def unchanged(model, before) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fitting_checkpoint_loads(tmp_path):
    runner = make_runner(tiny_cfg('mask_rcnn'), tmp_path, checkpoint_file(tmp_path, 'mask_rcnn'))
    assert type(runner) is StrictLoadRunner  # selected by the config's runner_type
    runner.load_or_resume()
    state = runner.model.state_dict()
    golden = load_model_golden('mask_rcnn')['state_dict']
    assert set(state) == set(golden)
    assert all(torch.equal(state[k], v) for k, v in golden.items())


def test_weights_under_model_load_as_they_are_found(tmp_path):
    """The one rule of where weights are (``state_dict``, ``model``, the top
    level): the runner checks and loads the same tensors (mmengine alone
    reads only ``state_dict`` or the top level)."""
    golden = load_model_golden('mask_rcnn')['state_dict']
    path = tmp_path / 'under_model.pth'
    torch.save({'model': golden, 'epoch': 12}, path)
    runner = make_runner(tiny_cfg('mask_rcnn'), tmp_path, str(path))
    runner.load_or_resume()
    state = runner.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in golden.items())


def test_wrong_family_is_refused_and_nothing_loaded(tmp_path):
    """A Mask R-CNN checkpoint for a Cascade config."""
    runner = make_runner(tiny_cfg('cascade'), tmp_path, checkpoint_file(tmp_path, 'mask_rcnn'))
    before = snapshot(runner.model)
    with pytest.raises(ValueError) as err:
        runner.load_or_resume()
    message = str(err.value)
    assert 'mask_rcnn.pth does not fit the model' in message
    # T-style (pre-norm) backbone vs L-style (post-norm, per-stage norms
    # absent); Mask R-CNN's single box head vs Cascade's three stages
    assert '28 key(s) not in the model: backbone.levels.0.norm.0.weight (16,)' in message
    assert 'not in the checkpoint: roi_head.bbox_head.0.fc_cls.weight (81, 32)' in message
    assert 'Nothing was loaded' in message
    assert unchanged(runner.model, before)


def test_wrong_variant_is_refused_and_nothing_loaded(tmp_path):
    """Width-16 weights for a width-24 model (as S weights for a T config)."""
    runner = make_runner(tiny_cfg('mask_rcnn', **WIDER), tmp_path,
                         checkpoint_file(tmp_path, 'mask_rcnn'))
    before = snapshot(runner.model)
    with pytest.raises(ValueError, match=r'backbone\.patch_embed\.conv1\.weight: checkpoint '
                       r'\(8, 3, 3, 3\) vs model \(12, 3, 3, 3\)'):
        runner.load_or_resume()
    assert unchanged(runner.model, before)


def test_plain_runner_would_half_load(tmp_path):
    """What the strict runner prevents: mmengine's Runner loads every tensor
    whose shape happens to fit and only warns."""
    runner = make_runner(tiny_cfg('mask_rcnn', **WIDER), tmp_path,
                         checkpoint_file(tmp_path, 'mask_rcnn'), runner_type='Runner')
    before = snapshot(runner.model)
    runner.load_or_resume()
    changed = [k for k, v in runner.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and len(changed) < len(before)


def test_mismatch_report_names_shapes_and_counts():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    weights = {'0.weight': torch.zeros(4, 2), '0.bias': torch.zeros(3),
               'module.1.weight': torch.zeros(1, 3), '2.weight': torch.zeros(5)}
    report = checkpoint_mismatch(model, weights, [(r'^module\.', '')])
    assert report == ('1 tensor(s) of a different shape: 0.weight: checkpoint (4, 2) vs '
                      'model (3, 2); 1 key(s) not in the model: 2.weight (5,); '
                      '1 model key(s) not in the checkpoint: 1.bias (1,)')
    weights = {'0.weight': torch.zeros(3, 2), '0.bias': torch.zeros(3),
               '1.weight': torch.zeros(1, 3), '1.bias': torch.zeros(1)}
    assert checkpoint_mismatch(model, weights) == ''


def test_tools_test_refuses_a_wrong_checkpoint(tmp_path, synthetic_data):
    """``tools/test.py CONFIG CKPT`` (its body) with the strict runner
    selected: the tiny golden Mask R-CNN (80 classes, 32-wide FPN) is not the
    demo model (64-wide FPN)."""
    from projects.internimage.apis import config_for_testing, run_testing
    root = str(synthetic_data / 'coco') + '/'
    ann = root + 'annotations/instances_val2017.json'
    cfg = config_for_testing(
        str(REPO_ROOT / 'configs' / 'demo' / 'mask_rcnn_internimage_demo.py'),
        checkpoint_file(tmp_path, 'mask_rcnn'), work_dir=str(tmp_path / 'w'),
        cfg_options={'runner_type': 'StrictLoadRunner',
                     'test_dataloader.dataset.data_root': root, 'test_evaluator.ann_file': ann})
    with pytest.raises(ValueError, match=r'neck\.lateral_convs\.0\.conv\.weight: checkpoint '
                       r'\(32, 16, 1, 1\) vs model \(64, 16, 1, 1\)'):
        run_testing(cfg)


def test_mmdet2_ema_checkpoint_loads_its_evaluated_weights(tmp_path):
    """A Cascade 3x reference file also holds mmdet 2.x's ``ema_*`` copies
    (the raw training weights): they are dropped, the rest loads strictly."""
    from projects.internimage.checkpoint.converters.mmdet2_ema import ema_copies
    weights = load_model_golden('cascade')['state_dict']
    with_ema = dict(weights)
    for key, value in weights.items():
        with_ema['ema_' + key.replace('.', '_')] = value + 1
    assert len(ema_copies(with_ema)) == len(weights)
    assert ema_copies({'ema_foo': torch.zeros(1), 'bar': torch.zeros(1)}) == []
    path = tmp_path / 'cascade_3x.pth'
    torch.save({'state_dict': with_ema, 'meta': {}}, path)
    runner = make_runner(tiny_cfg('cascade'), tmp_path, str(path))
    runner.load_or_resume()
    state = runner.model.state_dict()
    assert set(state) == set(weights)
    assert all(torch.equal(state[k], v) for k, v in weights.items())


def test_tta_model_loads_the_detector_checkpoint(tmp_path):
    """``--tta`` wraps the detector: the checkpoint is checked against it."""
    cfg = tiny_cfg('mask_rcnn')
    cfg.model = dict(type='DetTTAModel', module=cfg.model,
                     tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    runner = make_runner(cfg, tmp_path, checkpoint_file(tmp_path, 'mask_rcnn'))
    runner.load_or_resume()
    state = runner.model.module.state_dict()
    assert all(torch.equal(state[k], v)
               for k, v in load_model_golden('mask_rcnn')['state_dict'].items())
