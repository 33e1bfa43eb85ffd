"""DINO 4-scale + InternImage-L, 12 epochs, layer-wise lr decay, on COCO.

Box mAP 57.5, 241M parameters.
"""
_base_ = ['./dino_4scale_internimage_t_1x_coco_layer_wise_lr.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_l_22k_192to384.pth')
model = dict(
    backbone=dict(
        channels=160,
        depths=[5, 5, 22, 5],
        groups=[10, 20, 40, 80],
        drop_path_rate=0.4,
        layer_scale=1.0,
        offset_scale=2.0,
        post_norm=True,
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[320, 640, 1280]),
    test_cfg=dict(max_per_img=300))

optim_wrapper = dict(
    paramwise_cfg=dict(
        num_layers=37, layer_decay_rate=0.9, depths=[5, 5, 22, 5]))
