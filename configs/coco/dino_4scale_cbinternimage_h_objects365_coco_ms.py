"""DINO 4-scale + CB-InternImage-H, multi-scale + flip test.

The same model and training as
``dino_4scale_cbinternimage_h_objects365_coco_ss.py`` (single scale);
tested through mmdet's ``DetTTAModel``::

    python tools/test.py configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ms.py \\
        dino_4scale_cbinternimage_h_objects365_coco.pth --tta

Each image is detected at short sides 800, 1000 and 1200 (long side at
most 2000), each with and without a horizontal flip; the six sets of boxes
are mapped back to the image and merged by class-wise NMS (IoU 0.5), keeping
the 300 best. The reference does not publish its test-time augmentation (its
table gives the result without a config), so these scales are this
project's choice, around the single-scale test's 1000: this config may not
reproduce the published result exactly.
"""
_base_ = ['./dino_4scale_cbinternimage_h_objects365_coco_ss.py']

tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=300))
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(2000, short), keep_ratio=True)
             for short in (800, 1000, 1200)],
            [
                dict(type='RandomFlip', prob=0.),
                dict(type='RandomFlip', prob=1.),
            ],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                               'scale_factor', 'flip', 'flip_direction'))
            ],
        ])
]
