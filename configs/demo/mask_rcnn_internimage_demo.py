"""A tiny Mask R-CNN + InternImage for the synthetic-shapes demo.

The Mask R-CNN InternImage-T 1x recipe shrunk to train in about two minutes
on a 2-core CPU: the backbone of width 16 (depths 1-1-2-1), 64-channel FPN,
RPN and RoI heads (box head: 2 fully connected layers of 256; mask head: 4
convolutions of 64), 32 instead of 512 sampled RoIs per image, fewer RPN
proposals, 128-pixel images of the synthetic data set
(``tools/make_synthetic_data.py``, 4 classes), AdamW at lr 1e-3 and 6 epochs
of 4 images per iteration.
"""
_base_ = ['../coco/mask_rcnn_internimage_t_fpn_1x_coco.py']

data_root = 'data/synthetic/coco/'
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'cross'))
img_scale = (128, 128)
max_epochs = 6
width, neck = 16, 64
# the backbone pre-trained on other synthetic images (demo/pretrained/)
pretrained = '{{ fileDirname }}/../../demo/pretrained/internimage_demo_backbone.pth'

model = dict(
    # arch='t' (from the base config) shrunk; the layer-decay constructor
    # takes the layer depths from this backbone
    backbone=dict(
        channels=width,
        depths=[1, 1, 2, 1],
        groups=[1, 2, 4, 8],
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        in_channels=[width, width * 2, width * 4, width * 8],
        out_channels=neck),
    rpn_head=dict(in_channels=neck, feat_channels=neck),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=neck),
        bbox_head=dict(in_channels=neck, fc_out_channels=256, num_classes=4),
        mask_roi_extractor=dict(out_channels=neck),
        mask_head=dict(
            in_channels=neck, conv_out_channels=neck, num_classes=4)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)))

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
    batch_size=4,
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

optim_wrapper = dict(optimizer=dict(lr=1e-3))
# validate once, at the end
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=30),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[4, 5],
        gamma=0.1),
]
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
