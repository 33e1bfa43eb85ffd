"""Mask2Former + InternImage-H, 896x896 crops, 80k iterations on
COCO-Stuff-164k: the pre-training stage of the ADE20K record
(``configs/ade20k/mask2former_internimage_h_896_80k_cocostuff2ade20k_ss.py``
starts from its checkpoint).

Trained on 16 GPUs x 1 image. The lr is 2e-5 here (1e-5 on ADE20K) and
the gradients are not clipped, as in the published config.

Data: ``data/coco_stuff164k`` prepared as mmseg's docs say
(``images/{train,val}2017``, ``annotations/{train,val}2017/*_labelTrainIds.png``).
"""
_base_ = [
    'mmseg::_base_/datasets/coco-stuff164k.py',
    '../_base_/mask2former_internimage_h_896_80k.py',
]

num_classes = 171
crop_size = (896, 896)
model = dict(
    decode_head=dict(
        num_classes=num_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))

# Random resize of (3584, 896) by 0.5..2.0, 896x896 crops; test at short
# side 896 (long side <= 3584), resized to a multiple of 32.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(3584, 896),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(3584, 896), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(3584 * r), int(896 * r)),
                    keep_ratio=True)
                for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
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
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-5))
