"""Cascade Mask R-CNN + InternImage-XL, FPN, 3x schedule on COCO.

The L 3x recipe (3x pipeline and schedule, 32 GPUs x 2 images, EMA of the
weights) with the XL backbone, drop path 0.6.
"""
_base_ = ['./cascade_internimage_l_fpn_3x_coco.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_xl_22k_192to384.pth')
model = dict(
    backbone=dict(
        arch='xl',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
