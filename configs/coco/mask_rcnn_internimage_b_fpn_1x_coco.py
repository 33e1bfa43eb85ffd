"""Mask R-CNN + InternImage-B, FPN, 1x schedule on COCO."""
_base_ = ['./mask_rcnn_internimage_t_fpn_1x_coco.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_b_1k_224.pth')
model = dict(
    backbone=dict(
        arch='b',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[112, 224, 448, 896]))
