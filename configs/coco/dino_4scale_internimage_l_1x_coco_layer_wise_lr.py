"""DINO 4-scale + InternImage-L, 12 epochs, layer-wise lr decay, on COCO."""
_base_ = ['./dino_4scale_internimage_t_1x_coco_layer_wise_lr.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_l_22k_192to384.pth')
model = dict(
    backbone=dict(
        arch='l',
        with_cp=False,  # the T base config checkpoints activations; L does not
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[320, 640, 1280]),
    test_cfg=dict(max_per_img=300))
