"""UperNet + InternImage-XL, 640x640 crops, 160k iterations on ADE20K.

mIoU 55.0 / 55.3, 368M parameters, 3142 GFLOPs (512x2048).
"""
_base_ = ['./upernet_internimage_l_640_160k_ade20k.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_xl_22k_192to384.pth')
model = dict(
    backbone=dict(
        channels=192,
        depths=[5, 5, 24, 5],
        groups=[12, 24, 48, 96],
        drop_path_rate=0.4,
        offset_scale=2.0,
        post_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))

optim_wrapper = dict(
    paramwise_cfg=dict(
        num_layers=39,
        layer_decay_rate=0.94,
        depths=[5, 5, 24, 5],
        offset_lr_scale=1.0))
