"""Mask R-CNN + InternImage-S, FPN, 3x schedule with multi-scale + crop."""
_base_ = [
    './mask_rcnn_internimage_s_fpn_1x_coco.py',
    '../_base_/coco_ms-crop_3x.py',
]

train_pipeline = _base_.ms_crop_3x.train_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = _base_.ms_crop_3x.train_cfg
param_scheduler = _base_.ms_crop_3x.param_scheduler
