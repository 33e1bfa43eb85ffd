"""UperNet + InternImage-B, 512x512 crops, 160k iterations on ADE20K."""
_base_ = ['./upernet_internimage_t_512_160k_ade20k.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_b_1k_224.pth')
model = dict(
    backbone=dict(
        arch='b',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[112, 224, 448, 896]),
    auxiliary_head=dict(in_channels=448))
