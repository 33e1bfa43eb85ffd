"""DINO 4-scale + InternImage-T, 12 epochs, layer-wise lr decay, on COCO.

900 queries, two-stage, box refinement, contrastive denoising (mmdet's DINO
defaults).
"""
# mmdet's DINO config brings mmdet's default_runtime.py, so this config takes
# internimage_runtime.py beside it rather than det_runtime.py (mmengine
# refuses a key that two bases both define) and sets the checkpoint hook of
# det_runtime.py itself, below.
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../_base_/internimage_runtime.py',
]

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_t_1k_224.pth')
model = dict(
    # the reference pads images to a multiple of 32
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch='t',
        with_cp=True,
        out_indices=(1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='ChannelMapper',
        in_channels=[128, 256, 512],
        kernel_size=1,
        out_channels=256,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    # mmdet's DINOHead with the reference's box-reference eps (1e-3)
    bbox_head=dict(type='InternImageDINOHead'),
    test_cfg=dict(max_per_img=100))

# Flip, then (a) a random short side in 480..800 or (b) a random short side
# in {400, 500, 600}, a 384..600 crop (no negative crops) and (a) again.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(1333, s) for s in range(480, 801, 32)],
                    keep_ratio=True),
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(4200, 400), (4200, 500), (4200, 600)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=False),
                dict(
                    type='RandomChoiceResize',
                    scales=[(1333, s) for s in range(480, 801, 32)],
                    keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
# 8 GPUs x 2 images; images without boxes are skipped as in the reference
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=16)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9))

# 12 epochs, lr x0.1 at epoch 11, no warm-up (the published recipe).
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[11],
        gamma=0.1),
]

# As in det_runtime.py: every epoch, keep the last three and the best, with
# the project's AtomicCheckpointHook (no checkpoint lost to a kill).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='auto'))
