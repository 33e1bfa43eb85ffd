"""DINO 4-scale + InternImage-L, 12 epochs, backbone lr x0.1, on COCO.

No layer decay: the whole backbone trains at a tenth of the base lr.
"""
_base_ = ['./dino_4scale_internimage_l_1x_coco_layer_wise_lr.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))
