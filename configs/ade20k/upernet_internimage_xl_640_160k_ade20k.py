"""UperNet + InternImage-XL, 640x640 crops, 160k iterations on ADE20K."""
_base_ = ['./upernet_internimage_l_640_160k_ade20k.py']

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_xl_22k_192to384.pth')
model = dict(
    backbone=dict(
        arch='xl',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
