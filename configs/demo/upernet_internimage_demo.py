"""A tiny UperNet + InternImage for the synthetic-shapes demo.

The UperNet InternImage-T recipe shrunk to train in about a minute on a
2-core CPU: the backbone of width 16 (depths 1-1-2-1), a UperNet head of 64
channels (auxiliary FCN head: 32) instead of 512 (256), whole 128x128
images of the synthetic ADE20K-layout data set
(``tools/make_synthetic_data.py``; background + 4 shape classes), AdamW at
lr 2e-3 and 300 iterations of 4 images.
"""
_base_ = ['../ade20k/upernet_internimage_t_512_160k_ade20k.py']

data_root = 'data/synthetic/ade/ADEChallengeData2016'
metainfo = dict(
    classes=('background', 'circle', 'rectangle', 'triangle', 'cross'),
    palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50],
             [4, 200, 3]])
crop_size = (128, 128)
max_iters = 300
width = 16
# the backbone pre-trained on other synthetic images (demo/pretrained/)
pretrained = '{{ fileDirname }}/../../demo/pretrained/internimage_demo_backbone.pth'

model = dict(
    data_preprocessor=dict(size=crop_size),
    # arch='t' (from the base config) shrunk; the layer-decay constructor
    # takes the layer depths from this backbone
    backbone=dict(
        channels=width,
        depths=[1, 1, 2, 1],
        groups=[1, 2, 4, 8],
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(
        in_channels=[width, width * 2, width * 4, width * 8],
        channels=64,
        num_classes=5),
    auxiliary_head=dict(in_channels=width * 4, channels=32, num_classes=5))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
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
                    scale=(int(128 * r), int(128 * r)),
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
    batch_size=4,
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

optim_wrapper = dict(optimizer=dict(lr=2e-3))
# validate once, at the end
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
        end=30),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters),
]
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
