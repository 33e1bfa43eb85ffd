"""Cascade Mask R-CNN + InternImage-XL, FPN, 1x schedule on COCO.

Box / mask mAP 55.3 / 48.1, 387M parameters, 1782 GFLOPs (1280x800).
"""
_base_ = ['./cascade_internimage_l_fpn_1x_coco.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_xl_22k_192to384.pth')
model = dict(
    backbone=dict(
        arch='xl',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
