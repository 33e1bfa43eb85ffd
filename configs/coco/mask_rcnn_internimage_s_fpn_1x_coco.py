"""Mask R-CNN + InternImage-S, FPN, 1x schedule on COCO."""
_base_ = ['./mask_rcnn_internimage_t_fpn_1x_coco.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_s_1k_224.pth')
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[80, 160, 320, 640]))
