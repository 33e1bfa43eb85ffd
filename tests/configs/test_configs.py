"""Every config loads, builds its model (no downloads) with the published
parameter count (``configs/metafile.yml``), and runs its training pipeline on
a synthetic sample."""
import copy
from pathlib import Path
from typing import List

import pytest
import torch
from tests.helpers import REPO_ROOT

from projects.internimage import check_neck_in_channels

CONFIG_DIR = REPO_ROOT / 'configs'

ZOO = sorted(CONFIG_DIR.glob('coco/*.py')) + sorted(
    CONFIG_DIR.glob('ade20k/*.py'))
DEMO = sorted(CONFIG_DIR.glob('demo/*.py'))
ALL = ZOO + DEMO
#: Every config of configs/metafile.yml (the COCO-Stuff one has no
#: synthetic data set: it is not in ALL).
PUBLISHED = ZOO + sorted(CONFIG_DIR.glob('coco_stuff164k/*.py'))


def _ids(paths: List[Path]) -> List[str]:
    return [p.stem for p in paths]


#: Every config file.
EVERY = sorted(set(ALL + PUBLISHED))


def test_every_config_is_listed():
    assert set(CONFIG_DIR.glob('*/*.py')) - set(CONFIG_DIR.glob('_base_/*.py')) == set(EVERY)


@pytest.mark.parametrize('path', EVERY, ids=_ids(EVERY))
def test_run_protections(path, load_cfg):
    """What every config gets from its runtime bases (or root config)."""
    cfg = load_cfg(path)
    # checkpoints: written, then pointed to, then old ones removed
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert 'backend_args' not in cfg.default_hooks.checkpoint  # the hook picks local_atomic
    # dropped annotations reported, sample errors name the file
    assert [h['type'] for h in cfg.custom_hooks].count('DataCheckHook') == 1


@pytest.fixture
def load(load_cfg):
    """``load(path)``: the config with the backbone's pretrained init_cfg
    removed (no downloads)."""

    def _load(path: Path):
        cfg = load_cfg(path)
        cfg.model.backbone.init_cfg = None
        return cfg

    return _load


def build_model(cfg, device: str = 'cpu') -> torch.nn.Module:
    from mmengine.registry import MODELS
    with torch.device(device):
        return MODELS.build(copy.deepcopy(cfg.model))


@pytest.mark.parametrize('path', ALL, ids=_ids(ALL))
def test_config_loads(path, load):
    cfg = load(path)
    assert cfg.default_scope == ('mmseg' if path.stem.startswith(
        ('upernet', 'mask2former')) else 'mmdet')
    # patching mmengine is explicit: the configs import the compat module
    assert cfg.custom_imports.imports == [
        'projects.internimage', 'projects.internimage.compat'
    ]
    assert not cfg.custom_imports.allow_failed_imports
    assert cfg.model.backbone.type == (
        'CBInternImage' if 'cbinternimage' in path.stem else 'InternImage')
    check_neck_in_channels(cfg.model)


@pytest.mark.parametrize('group, name, key, value, match', [
    ('coco', 'mask_rcnn_internimage_t_fpn_1x_coco', 'neck',
     dict(in_channels=[80, 160, 320, 640]),
     r'model.neck \(FPN\) in_channels=\[80, 160, 320, 640\] does not match the '
     r'backbone widths \[64, 128, 256, 512\]'),
    ('coco', 'dino_4scale_internimage_t_1x_coco_layer_wise_lr', 'neck',
     dict(in_channels=[64, 128, 256]),
     r'ChannelMapper.*\[64, 128, 256\].*widths \[128, 256, 512\]'),
    ('ade20k', 'upernet_internimage_s_512_160k_ade20k', 'decode_head',
     dict(in_channels=[64, 128, 256, 512]),
     r'model.decode_head \(UPerHead\) in_channels=\[64, 128, 256, 512\].*'
     r'widths \[80, 160, 320, 640\]'),
    ('ade20k', 'upernet_internimage_s_512_160k_ade20k', 'auxiliary_head',
     dict(in_channels=256),
     r'model.auxiliary_head \(FCNHead\) in_channels=256 with in_index=2.*'
     r'\(selected: 320\)'),
])
def test_neck_width_mismatch_is_refused(group, name, key, value, match, load):
    """A backbone whose stage widths differ from what the neck (or the
    segmentation heads) expect is refused before the model is built, naming
    both values."""
    cfg = load(CONFIG_DIR / group / f'{name}.py')
    check_neck_in_channels(cfg.model)
    cfg.model[key].update(value)
    with pytest.raises(ValueError, match=match):
        check_neck_in_channels(cfg.model)


def test_neck_check_follows_arch_and_overrides():
    # (channels=20: L's groups 10, 20, 40, 80 divide its stage widths; a
    # width they do not divide is refused first, as the backbone refuses it)
    model = dict(backbone=dict(type='InternImage', arch='l', channels=20,
                               out_indices=(2, 3)),
                 neck=dict(type='FPN', in_channels=[80, 160]))
    check_neck_in_channels(model)
    model['neck']['in_channels'] = [640, 1280]  # L's own widths: overridden
    with pytest.raises(ValueError, match=r'\[640, 1280\].*widths \[80, 160\]'):
        check_neck_in_channels(model)
    # other backbones are not InternImage's business
    check_neck_in_channels(dict(backbone=dict(type='ResNet'), neck=dict(in_channels=[1])))


@pytest.mark.parametrize('path', PUBLISHED, ids=_ids(PUBLISHED))
def test_published_param_count(path, load, zoo):
    """Built on the meta device (no memory, no init): count only, against
    the metafile's published Parameters."""
    model = build_model(load(path), device='meta')
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    published = zoo[path.stem].params_m
    # the published figures are rounded (49M: to 1M, 1.12B: to 10M, 1.1B:
    # to 100M): within half their last digit
    assert abs(millions - published) <= zoo[path.stem].params_half_unit_m, (
        f'{path.stem}: {millions:.1f}M parameters, published {published}M')


@pytest.mark.parametrize('path', DEMO, ids=_ids(DEMO))
def test_demo_model_trains_one_step(path, synthetic_data, load):
    """The demo models build on CPU and take one training step."""
    from mmengine.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    cfg = load(path)
    data = cfg.train_dataloader.dataset
    data.data_root = _data_root(cfg, synthetic_data)
    dataset = DATASETS.build(data)
    model = build_model(cfg)
    model.train()
    batch = pseudo_collate([dataset[0], dataset[1]])
    batch = model.data_preprocessor(batch, training=True)
    losses = model(**batch, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)


def _data_root(cfg, root: Path) -> str:
    if cfg.default_scope == 'mmdet':
        return str(root / 'coco') + '/'
    return str(root / 'ade' / 'ADEChallengeData2016')


@pytest.mark.parametrize('path', ALL, ids=_ids(ALL))
def test_train_pipeline_runs(path, synthetic_data, load):
    """The config's training dataset (its class, its pipeline) yields a
    packed sample from the synthetic images."""
    from mmengine.registry import DATASETS
    from projects.internimage.apis.synthetic_data import CLASSES
    cfg = load(path)
    data = cfg.train_dataloader.dataset
    data.data_root = _data_root(cfg, synthetic_data)
    if cfg.default_scope == 'mmdet':
        data.metainfo = dict(classes=CLASSES)
    dataset = DATASETS.build(data)
    sample = dataset[0]
    inputs, data_sample = sample['inputs'], sample['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape[0] == 3
    if cfg.default_scope == 'mmdet':
        assert len(data_sample.gt_instances) >= 0
        assert 'flip' in data_sample.metainfo
    else:
        seg = data_sample.gt_sem_seg.data
        assert seg.shape[-2:] == inputs.shape[-2:]
        assert set(seg.unique().tolist()) <= {0, 1, 2, 3, 4, 255}
