"""The Mask2Former + InternImage-H recipe shared by the COCO-Stuff-164k
pre-training and the ADE20K fine-tuning (896x896 crops, 80k iterations,
16 GPUs x 1 image), on mmseg 1.x's own ``Mask2FormerHead``.

Model: InternImage-H (all four stages out) into a Mask2Former head with
1024 feature / mask channels and 200 queries; the pixel decoder is a 6-layer
multi-scale deformable-attention encoder (32 heads, 3 levels, 4 points, FFN
4096) and the transformer decoder has 9 layers (32 heads, FFN 4096). The
losses and the Hungarian matching are Mask2Former's: class 2.0 (0.1 on the
no-object class), mask BCE 5.0 and dice 5.0 on 12544 sampled points.

Optimizer: AdamW (wd 0.05) with layer-wise lr decay 0.95 over the 50
blocks of InternImage-H (the head's queries, level embedding and class /
mask embeddings in layer 0, as in the reference); poly (power 1) decay to 0
after a 1500-iteration linear warm-up from 1e-6 x lr. The leaf configs set
the data set, the number of classes, the lr and the gradient clipping.

Size and FLOPs, published and counted here: docs/model_zoo.md.

Memory: ``model.backbone.with_cp=True`` (activation checkpointing of the
backbone blocks; same results) trades compute for memory when the GPUs run
out of it (``--cfg-options model.backbone.with_cp=True``).
"""
_base_ = [
    './seg_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
# mmengine's Runner, not seg_runtime.py's StrictLoadRunner: the ADE20K stage
# starts from the COCO-Stuff checkpoint, whose 172-class classifier must be
# skipped on load (as in the reference), which a strict runner refuses.
runner_type = 'Runner'

pretrained = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
              'internimage_h_jointto22k_384.pth')
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(896, 896)),
    backbone=dict(
        type='InternImage',
        arch='h',
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(
        type='Mask2FormerHead',
        in_channels=[320, 640, 1280, 2560],
        strides=[4, 8, 16, 32],
        feat_channels=1024,
        out_channels=1024,
        num_classes=150,
        num_queries=200,
        num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=1024,
                        num_heads=32,
                        num_levels=3,
                        num_points=4,
                        im2col_step=64,
                        dropout=0.0,
                        batch_first=True,
                        norm_cfg=None,
                        init_cfg=None),
                    ffn_cfg=dict(
                        embed_dims=1024,
                        feedforward_channels=4096,
                        num_fcs=2,
                        ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=512, normalize=True),
            init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=512, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=1024,
                    num_heads=32,
                    attn_drop=0.0,
                    proj_drop=0.0,
                    dropout_layer=None,
                    batch_first=True),
                cross_attn_cfg=dict(
                    embed_dims=1024,
                    num_heads=32,
                    attn_drop=0.0,
                    proj_drop=0.0,
                    dropout_layer=None,
                    batch_first=True),
                ffn_cfg=dict(
                    embed_dims=1024,
                    feedforward_channels=4096,
                    num_fcs=2,
                    act_cfg=dict(type='ReLU', inplace=True),
                    ffn_drop=0.0,
                    dropout_layer=None,
                    add_identity=True)),
            init_cfg=None),
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=2.0,
            reduction='mean',
            class_weight=[1.0] * 150 + [0.1]),
        loss_mask=dict(
            type='mmdet.CrossEntropyLoss',
            use_sigmoid=True,
            reduction='mean',
            loss_weight=5.0),
        loss_dice=dict(
            type='mmdet.DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        train_cfg=dict(
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=2.0),
                    dict(
                        type='mmdet.CrossEntropyLossCost',
                        weight=5.0,
                        use_sigmoid=True),
                    dict(
                        type='mmdet.DiceCost',
                        weight=5.0,
                        pred_act=True,
                        eps=1.0)
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# 16 GPUs x 1 image
auto_scale_lr = dict(enable=False, base_batch_size=16)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='InternImageLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.95, offset_lr_scale=1.0))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=80000),
]
train_cfg = dict(max_iters=80000, val_interval=8000)
# checkpoints every 1k iterations, keep the last and the best mIoU
# AtomicCheckpointHook (seg_runtime.py says why it is set here): a kill never
# leaves a partial checkpoint, nor loses the last complete one.
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=1000,
        max_keep_ckpts=1, save_best='mIoU'))
