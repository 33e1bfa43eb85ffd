"""Cascade Mask R-CNN + InternImage-L, FPN, 3x schedule on COCO.

Trained on 32 GPUs x 2 images with an EMA of the weights.
"""
_base_ = [
    './cascade_internimage_l_fpn_1x_coco.py',
    '../_base_/coco_ms-crop_3x.py',
]

train_pipeline = _base_.ms_crop_3x.train_pipeline
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
train_cfg = _base_.ms_crop_3x.train_cfg
param_scheduler = _base_.ms_crop_3x.param_scheduler
# 32 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=64)

optim_wrapper = dict(
    optimizer=dict(lr=0.0002),
    paramwise_cfg=dict(layer_decay_rate=0.90, offset_lr_scale=0.01))

# The reference's ExpMomentumEMAHook(momentum=1e-4): every iteration
# ema = (1 - m) * ema + m * param (buffers too) with
# m = (1 - 1e-4) * exp(-(1 + step) / 2000) + 1e-4; validation and the saved
# `state_dict` use the EMA weights. The runtime's hooks (RNGStateHook) follow.
custom_hooks = [
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        gamma=2000,
        update_buffers=True,
        priority=49),
] + _base_.custom_hooks
