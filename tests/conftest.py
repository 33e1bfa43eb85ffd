"""Fixtures shared by the test packages: the synthetic data, tiny configs
on it and tiny checkpoints of the demo models.

Only mm-free imports at module level: ``tests/ops_dcnv3`` also runs on
machines with torch alone.
"""
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT, require_compiled_if_built, tf32_disabled

DEMO = REPO_ROOT / 'configs' / 'demo'
DET_CFG = DEMO / 'mask_rcnn_internimage_demo.py'
SEG_CFG = DEMO / 'upernet_internimage_demo.py'


@pytest.fixture
def require_core_op():
    """Call with a core_op name: fails if the compiled op is built but broken."""
    return require_compiled_if_built


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory) -> Path:
    """A few tiny images in both synthetic layouts (COCO and ADE20K)."""
    from projects.internimage.apis.synthetic_data import generate
    out = tmp_path_factory.mktemp('synthetic')
    generate(str(out), coco_num=(4, 2), ade_num=(4, 2), size=96)
    return out


@pytest.fixture
def tiny_seg_cfg(tmp_path, synthetic_data) -> Path:
    """The segmentation demo made deterministic (no random augmentation,
    no dropout / drop path) on 64x64 inputs: 4 iterations, checkpoints
    every 2."""
    data_root = synthetic_data / 'ade' / 'ADEChallengeData2016'
    cfg = tmp_path / 'tiny_seg.py'
    cfg.write_text(f'''
_base_ = [{str(SEG_CFG)!r}]
data_root = {str(data_root)!r}
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(drop_path_rate=0.0),
    decode_head=dict(dropout_ratio=0.0),
    auxiliary_head=dict(dropout_ratio=0.0))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=4, val_interval=100)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', eta_min=0.0, by_epoch=False, begin=0, end=4),
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=2, max_keep_ckpts=3, save_best=None))
randomness = dict(seed=0)
''')
    return cfg


@pytest.fixture
def tiny_det_cfg(tmp_path, synthetic_data) -> Path:
    """The detection demo on the synthetic data: one epoch of 2 images
    (one iteration), testing on the 2 validation images."""
    root = str(synthetic_data / 'coco') + '/'
    cfg = tmp_path / 'tiny_det.py'
    cfg.write_text(f'''
_base_ = [{str(DET_CFG)!r}]
data_root = {root!r}
train_dataloader = dict(
    batch_size=2, dataset=dict(data_root=data_root, indices=2))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=100)
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
''')
    return cfg


def save_tiny_checkpoint(config: Path, path: Path) -> Path:
    """Build the model of ``config`` (seeded random weights) and save it as
    a checkpoint with the dataset classes and palette in its meta, as
    mmengine's CheckpointHook does."""
    from projects.internimage.apis import load_config, scope_of
    cfg = load_config(str(config))
    if scope_of(cfg) == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    metainfo = cfg.test_dataloader.dataset.metainfo
    dataset_meta = dict(classes=list(metainfo['classes']))
    if 'palette' in metainfo:
        dataset_meta['palette'] = [list(c) for c in metainfo['palette']]
    torch.save(
        dict(state_dict=model.state_dict(),
             meta=dict(dataset_meta=dataset_meta)), path)
    return path


@pytest.fixture(scope='session')
def det_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the (untrained) detection demo model."""
    return save_tiny_checkpoint(
        DET_CFG, tmp_path_factory.mktemp('ckpt') / 'det.pth')


@pytest.fixture(scope='session')
def seg_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the (untrained) segmentation demo model."""
    return save_tiny_checkpoint(
        SEG_CFG, tmp_path_factory.mktemp('ckpt') / 'seg.pth')


@pytest.fixture
def no_tf32():
    """TF32 off for the test (restored after): GPU tests that compare float32
    results use this one fixture, e.g. ``pytestmark =
    pytest.mark.usefixtures('no_tf32')``. See ops_dcnv3.testing.tf32_disabled."""
    with tf32_disabled():
        yield
