"""UperNet + InternImage-S, 512x512 crops, 160k iterations on ADE20K."""
_base_ = ['./upernet_internimage_t_512_160k_ade20k.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_s_1k_224.pth')
model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))
