"""DINO 4-scale + InternImage-H, pre-trained on Objects365, fine-tuned on
COCO for 20k iterations; single-scale test.

Published results, size and checkpoint: ``configs/metafile.yml``; the
FLOPs counted here and the training memory, estimated without a GPU:
``docs/model_zoo.md``.

The reference's recipe (its ``dino_4scale_internimage_h_objects365_coco_ss``
config): InternImage-H with activation checkpointing, stages 1-3 into a
ChannelMapper (256 channels, GN, 4 levels); DINO with 900 queries and
contrastive denoising of up to 1000 queries (label noise 0.5, box noise
1.0), 6 + 6 layers, at most 300 detections. AdamW, lr 1e-4, weight decay
1e-4, layer decay 0.94 over H's 50 blocks, lr x1e-3 for the deformable
attentions' sampling offsets, gradient clipping 0.1; 1 image per GPU (the
reference config does not say how many GPUs: no ``auto_scale_lr``); 20k
iterations, 500 warm-up iterations from 0.001 x lr, then constant; random
resize of (2000, 600..1800) with flips; test at short side 1000 (long side
at most 2000); evaluation and checkpoints every 200 iterations.

Differences from the reference config, none of them a change of the model:
its ``snip_cfg`` (read by none of its code) is gone; its transformer FFNs
recompute their activations in the backward pass (``use_checkpoint``), which
mmdet 3.x's ``FFN`` cannot (it trades memory only).

Weights: the reference publishes the fine-tuned model
(``dino_4scale_internimage_h_objects365_coco.pth``, reference DINO layout,
converted on load) but not the Objects365 model it starts from, so
``load_from`` is empty: give your Objects365 DINO-H checkpoint with
``--cfg-options load_from=...`` to fine-tune.
"""
_base_ = ['./dino_4scale_internimage_t_1x_coco_layer_wise_lr.py']

model = dict(
    backbone=dict(
        arch='h',
        with_cp=True,
        out_indices=(1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[640, 1280, 2560]),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=1000)),
    test_cfg=dict(max_per_img=300))
load_from = None

# Flip, then a random short side in 600..1800 (long side at most 2000);
# test at short side 1000 (long side at most 2000).
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=[(2000, 600), (2000, 1800)], keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(2000, 1000), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# the reference does not state its number of GPUs: --auto-scale-lr is refused
auto_scale_lr = dict(_delete_=True, enable=False)

optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.94, offset_lr_scale=1e-3))

# 20k iterations: linear warm-up over 500 from 0.001 x lr, then constant.
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=20000, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=3, save_best='auto'))
log_processor = dict(by_epoch=False)
