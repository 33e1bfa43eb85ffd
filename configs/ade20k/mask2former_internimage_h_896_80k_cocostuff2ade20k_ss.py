"""Mask2Former + InternImage-H, 896x896 crops, 80k iterations on ADE20K,
fine-tuned from the COCO-Stuff-164k model
(``configs/coco_stuff164k/mask2former_internimage_h_896_80k_cocostuff164k.py``,
its published checkpoint is ``load_from``); single-scale test.

Trained on 16 GPUs x 1 image; the multi-scale + flip test is
``mask2former_internimage_h_896_80k_cocostuff2ade20k_ms.py``.

The published checkpoints are in the reference's own (mmseg 0.x) layout:
given as ``load_from`` or to ``tools/test.py`` they are converted on
loading; ``tools/model_converters/internimage_mask2former_to_mmseg.py``
writes a converted file.
"""
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    '../_base_/mask2former_internimage_h_896_80k.py',
]

# The COCO-Stuff model (reference layout, converted on loading). Its class
# embedding has 172 outputs, not 151: mmengine skips it with a warning (as
# the reference did), so the classifier starts afresh; keep the default
# runner, a strict one would refuse this checkpoint.
load_from = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
             'mask2former_internimage_h_896_80k_cocostuff164k.pth')
num_classes = 150
crop_size = (896, 896)
model = dict(
    backbone=dict(init_cfg=None),
    decode_head=dict(
        num_classes=num_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))

# Random resize of (3584, 896) by 0.5..2.0, 896x896 crops; test at short
# side 896 (long side <= 3584), resized to a multiple of 32.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
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
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
# The published multi-scale + flip test (the _ms config): short side
# 768, 832, 896, 960 and 1024, each also flipped; `tools/test.py --tta`.
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(4 * short, short),
                    keep_ratio=True)
                for short in (768, 832, 896, 960, 1024)
            ],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=1e-5), clip_grad=dict(max_norm=0.1, norm_type=2))
# mIoU every 2k iterations
train_cfg = dict(val_interval=2000)
