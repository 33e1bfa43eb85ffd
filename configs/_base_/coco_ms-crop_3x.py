"""The 3x COCO recipe of the InternImage Mask R-CNN / Cascade configs.

36 epochs with lr steps at 27 and 33 (after the usual 500-iteration linear
warm-up), and the DETR / Sparse R-CNN style augmentation: flip, then one of
two policies at random, (a) a random short side in 480..800 (step 32, long
side <= 1333), or (b) a random short side in {400, 500, 600}, a random
absolute crop of 384..600 pixels (negative crops allowed), then (a) again.

Everything sits in one dict, ``ms_crop_3x``, so that a config can inherit
both a 1x config and this file (mmengine refuses a key defined by two
bases) and pick the pieces it needs::

    _base_ = ['./x_1x_coco.py', '../_base_/coco_ms-crop_3x.py']
    train_pipeline = _base_.ms_crop_3x.train_pipeline
    train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
    train_cfg = _base_.ms_crop_3x.train_cfg
    param_scheduler = _base_.ms_crop_3x.param_scheduler
"""
ms_crop_3x = dict(
    train_pipeline=[
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
                        scales=[(1333, 400), (1333, 500), (1333, 600)],
                        keep_ratio=True),
                    dict(
                        type='RandomCrop',
                        crop_type='absolute_range',
                        crop_size=(384, 600),
                        allow_negative_crop=True),
                    dict(
                        type='RandomChoiceResize',
                        scales=[(1333, s) for s in range(480, 801, 32)],
                        keep_ratio=True),
                ],
            ]),
        dict(type='PackDetInputs'),
    ],
    train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=36, val_interval=1),
    param_scheduler=[
        dict(
            type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
            end=500),
        dict(
            type='MultiStepLR',
            begin=0,
            end=36,
            by_epoch=True,
            milestones=[27, 33],
            gamma=0.1),
    ])
