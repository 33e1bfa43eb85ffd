"""A tiny UperNet + InternImage for the synthetic-shapes demo.

The UperNet InternImage-T recipe with the backbone shrunk (width 16, depths
1-1-2-1), 64x64 crops (images resized to a short side of 64), the synthetic
ADE20K-layout data set (``tools/make_synthetic_data.py``; background + 4
shape classes) and 250 iterations, so that ``tools/demo.sh`` trains it from
scratch in about 4 minutes with two CPU processes (2 x 2 images per
iteration).
"""
_base_ = ['../ade20k/upernet_internimage_t_512_160k_ade20k.py']

data_root = 'data/synthetic/ade/ADEChallengeData2016'
metainfo = dict(
    classes=('background', 'circle', 'rectangle', 'triangle', 'cross'),
    palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50],
             [4, 200, 3]])
crop_size = (64, 64)
max_iters = 250

model = dict(
    data_preprocessor=dict(size=crop_size),
    # arch='t' (from the base config) shrunk; the layer-decay constructor
    # takes the layer depths from this backbone
    backbone=dict(
        channels=16,
        depths=[1, 1, 2, 1],
        groups=[1, 2, 4, 8],
        init_cfg=None),
    decode_head=dict(in_channels=[16, 32, 64, 128], num_classes=5),
    auxiliary_head=dict(in_channels=64, num_classes=5))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(256, 64),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
# `tools/test.py --tta`: the recipe's scales (0.5..1.75) and flips, relative
# to this config's test scale, not the 512 px of the T recipe (which made TTA
# take minutes per 128-px image).
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(256 * r), int(64 * r)),
                    keep_ratio=True) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
            ],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
# ADE20KDataset fixes the 150 ADE classes: the generic dataset class takes
# the demo's own, with the same file layout and label convention.
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# validate once, at the end
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=50),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters),
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
