"""A tiny Mask2Former + InternImage for the synthetic-shapes demo.

The Mask2Former + InternImage-H recipe (mmseg 1.x ``Mask2FormerHead``) shrunk
to run on a CPU: an InternImage-T backbone of width 16 (depths 1-1-2-1), a
head of 32 channels with 10 queries, a 2-layer pixel decoder and a 3-layer
transformer decoder, 64x64 crops of the synthetic ADE20K-layout data set
(``tools/make_synthetic_data.py``; background + 4 shape classes), AdamW at
lr 4e-3 and 200 iterations of 4 images.
"""
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    '../_base_/mask2former_internimage_h_896_80k.py',
]

data_root = 'data/synthetic/ade/ADEChallengeData2016'
metainfo = dict(
    classes=('background', 'circle', 'rectangle', 'triangle', 'cross'),
    palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50],
             [4, 200, 3]])
num_classes = 5
crop_size = (64, 64)
max_iters = 200
width, embed, heads = 16, 32, 4

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='t',
        channels=width,
        depths=[1, 1, 2, 1],
        groups=[1, 2, 4, 8],
        drop_path_rate=0.0,
        init_cfg=None),
    decode_head=dict(
        in_channels=[width, width * 2, width * 4, width * 8],
        feat_channels=embed,
        out_channels=embed,
        num_classes=num_classes,
        num_queries=10,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=embed, num_heads=heads),
                    ffn_cfg=dict(
                        embed_dims=embed, feedforward_channels=2 * embed))),
            positional_encoding=dict(num_feats=embed // 2)),
        positional_encoding=dict(num_feats=embed // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed, num_heads=heads),
                cross_attn_cfg=dict(embed_dims=embed, num_heads=heads),
                ffn_cfg=dict(
                    embed_dims=embed, feedforward_channels=2 * embed))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=256)))

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

optim_wrapper = dict(
    optimizer=dict(lr=4e-3),
    paramwise_cfg=dict(layer_decay_rate=1.0))
# validate once, at the end
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
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
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
