"""A tiny Mask R-CNN + InternImage for the synthetic-shapes demo.

The Mask R-CNN InternImage-T 1x recipe with the backbone shrunk (width 16,
depths 1-1-2-1), 128-pixel images, the synthetic data set
(``tools/make_synthetic_data.py``, 4 classes) and a 6-epoch schedule, so
that ``tools/demo.sh`` trains it from scratch in about 6 minutes with two
CPU processes (2 x 2 images per iteration). One more change makes that
possible: 32 instead of 512 sampled RoIs per image for the box and mask
heads, which dominate the CPU time.
"""
_base_ = ['../coco/mask_rcnn_internimage_t_fpn_1x_coco.py']

data_root = 'data/synthetic/coco/'
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'cross'))
img_scale = (128, 128)
max_epochs = 6

model = dict(
    # arch='t' (from the base config) shrunk; the layer-decay constructor
    # takes the layer depths from this backbone
    backbone=dict(
        channels=16,
        depths=[1, 1, 2, 1],
        groups=[1, 2, 4, 8],
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128]),
    roi_head=dict(
        bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=32))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# validate once, at the end
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=50),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[4, 5],
        gamma=0.1),
]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
