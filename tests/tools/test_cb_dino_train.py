"""A tiny DINO + CB-InternImage (the CB-InternImage-H config shrunk to width
16, depths 1-1-2-1, a 32-wide 2 + 2-layer transformer) learns the synthetic
COCO shapes through tools/train.py (200 iterations of 2 images) and
tools/test.py measures it on the held-out images: bbox_mAP_50 >= 0.3
(0.69 on the development machine)."""
import glob
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch

from tests.helpers import REPO_ROOT

CB_CONFIG = REPO_ROOT / 'configs' / 'coco' / 'dino_4scale_cbinternimage_h_objects365_coco_ss.py'
#: The tiny model's custom import (``tiny_dino_embed``: mmdet's DINO decoder
#: at the tiny width), found as a user's custom modules are: on PYTHONPATH.
CUSTOM_IMPORTS = Path(__file__).resolve().parent / 'custom_imports'
#: What the tiny model must reach on the 8 validation images.
MIN_BBOX_MAP_50 = 0.3
ITERS = 200


def run(cmd: List[str], log: Path) -> str:
    """Run a tool from outside the repository (one thread: the tiny model
    is fastest so on a shared machine), with the tiny model's custom import
    on PYTHONPATH; fail with the end of its output."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(CUSTOM_IMPORTS))
    proc = subprocess.run(cmd, cwd=log.parent, env=env, timeout=1200, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log.write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


@pytest.fixture(scope='module')
def shapes_data(tmp_path_factory) -> Path:
    """16 training and 8 validation images of 128x128 with 1-3 shapes."""
    from projects.internimage.apis.synthetic_data import generate
    out = tmp_path_factory.mktemp('cb_dino_data')
    generate(str(out), coco_num=(16, 8), ade_num=(1, 1), size=128, max_shapes=3)
    return out / 'coco'


def tiny_config(path: Path, data_root: Path) -> Path:
    root = str(data_root) + '/'
    path.write_text(f'''
_base_ = [{str(CB_CONFIG)!r}]
custom_imports = dict(
    imports=['projects.internimage', 'projects.internimage.compat',
             'tiny_dino_embed'],
    allow_failed_imports=False)
data_root = {root!r}
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'cross'))
load_from = None
attn = dict(embed_dims=32, num_heads=2)
ffn = dict(embed_dims=32, feedforward_channels=64)
model = dict(
    num_queries=100,
    backbone=dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8],
                  level2_post_norm_block_ids=[1], with_cp=False, drop_path_rate=0.),
    neck=dict(in_channels=[32, 64, 128], out_channels=32, norm_cfg=dict(num_groups=8)),
    positional_encoding=dict(num_feats=16),
    encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=attn, ffn_cfg=ffn)),
    decoder=dict(num_layers=2,
                 layer_cfg=dict(self_attn_cfg=attn, cross_attn_cfg=attn, ffn_cfg=ffn)),
    bbox_head=dict(num_classes=4, embed_dims=32),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=20)),
    test_cfg=dict(max_per_img=20))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline,
                 filter_cfg=dict(filter_empty_gt=True, min_size=0)))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters={ITERS}, val_begin=10**9)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30)]
default_hooks = dict(logger=dict(interval=25),
                     checkpoint=dict(interval={ITERS}, save_best=None))
randomness = dict(seed=0)
''')
    return path


def test_tiny_cb_dino_trains_and_tests(shapes_data, tmp_path):
    cfg = tiny_config(tmp_path / 'tiny_cb_dino.py', shapes_data)
    work = tmp_path / 'work'
    out = run([sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), str(cfg),
               '--work-dir', str(work)], tmp_path / 'train.log')
    # the losses of both backbones, the assisting one weighted 0.5
    assert 'loss_cls0_w0.5' in out and 'd0.dn_loss_bbox1' in out
    checkpoint = work / f'iter_{ITERS}.pth'
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert 'backbone.cb_modules.1.gamma0' in state and 'neck.convs.0.conv.weight' in state
    # the composite connections opened during training
    assert all(state[f'backbone.cb_modules.1.gamma{i}'].abs().max() > 0 for i in range(4))

    run([sys.executable, str(REPO_ROOT / 'tools' / 'test.py'), str(cfg), str(checkpoint),
         '--work-dir', str(tmp_path / 'test')], tmp_path / 'test.log')
    logs = sorted(glob.glob(str(tmp_path / 'test' / '*' / '*.json')), key=os.path.getmtime)
    metrics = json.loads(Path(logs[-1]).read_text().strip().splitlines()[-1])
    assert metrics['coco/bbox_mAP_50'] >= MIN_BBOX_MAP_50, metrics
