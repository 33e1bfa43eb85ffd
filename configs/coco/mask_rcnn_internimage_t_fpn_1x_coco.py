"""Mask R-CNN + InternImage-T, FPN, 1x schedule (12 epochs) on COCO.

Published results, sizes and checkpoints of every config: configs/metafile.yml.
"""
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/det_runtime.py',
]

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_t_1k_224.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=256,
        num_outs=5))

# 8 GPUs x 2 images
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)

# AdamW with (here flat) layer-wise lr decay over the backbone's blocks (the
# backbone gives the layer ids);
# warm-up (500 iters, ratio 0.001) and steps (8, 11) come from schedule_1x.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05),
    clip_grad=None,
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0))
