"""Pre-training of the demo's tiny backbone (``demo/pretrained/``).

The demo UperNet (``upernet_internimage_demo.py``) trained from scratch for
1000 iterations of 8 images on a synthetic ADE20K-layout set of its own
(1000 training images, generated with another seed than the demo's data:
none of the demo's images), with colour distortion. Its backbone, cut out by
``tools/model_converters/extract_backbone.py``, is the pretrained backbone
both demo models start from. The commands: ``demo/pretrained/README.md``.
"""
_base_ = ['./upernet_internimage_demo.py']

data_root = 'data/pretrain/ade/ADEChallengeData2016'
crop_size = (128, 128)
max_iters = 1000

model = dict(backbone=dict(init_cfg=None))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
        end=100),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters),
]
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
