"""Cascade Mask R-CNN + InternImage-XL, FPN, 1x schedule on COCO."""
_base_ = ['./cascade_internimage_l_fpn_1x_coco.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_xl_22k_192to384.pth')
model = dict(
    backbone=dict(
        arch='xl',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
