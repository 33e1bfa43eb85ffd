"""The Objects365 -> COCO DINO-H and DINO + CB-InternImage-H configs carry
the reference's recipe (its dino_4scale_{cb,}internimage_h_objects365_coco_ss
configs), in this project's conventions. The numbers the metafile records
(the Objects365 weights ``load_from``, lr, weight decay, layer decay,
gradient clip, iterations) are checked against ``configs/metafile.yml`` in
test_metafile.py."""
import copy

import pytest
import torch
from tests.helpers import REPO_ROOT

H = 'dino_4scale_internimage_h_objects365_coco_ss'
CB = 'dino_4scale_cbinternimage_h_objects365_coco_ss'
CB_MS = 'dino_4scale_cbinternimage_h_objects365_coco_ms'


@pytest.fixture
def load(load_cfg):
    return lambda name: load_cfg(REPO_ROOT / 'configs' / 'coco' / f'{name}.py')


@pytest.mark.parametrize('name', [H, CB])
def test_recipe(name, load):
    cfg = load(name)
    model = cfg.model
    bb = model.backbone
    composite = name == CB
    assert (bb.type, bb.arch, bb.with_cp, tuple(bb.out_indices), bb.init_cfg) == (
        'CBInternImage' if composite else 'InternImage', 'h', True, (1, 2, 3), None)
    assert bb.get('core_op', 'DCNv3') == 'DCNv3'
    assert model.type == ('CBDINO' if composite else 'DINO')
    neck = model.neck
    assert (neck.type, neck.in_channels, neck.out_channels, neck.num_outs, neck.norm_cfg) == (
        'CBChannelMapper' if composite else 'ChannelMapper', [640, 1280, 2560], 256, 4,
        dict(type='GN', num_groups=32))
    assert model.bbox_head.type == ('CBDINOHead' if composite else 'InternImageDINOHead')
    if composite:
        assert model.bbox_head.cb_first_weight == 0.5
    assert model.bbox_head.num_classes == 80
    assert model.num_queries == 900 and model.as_two_stage and model.with_box_refine
    dn = model.dn_cfg
    assert (dn.label_noise_scale, dn.box_noise_scale, dn.group_cfg.dynamic,
            dn.group_cfg.num_dn_queries) == (0.5, 1.0, True, 1000)
    assert model.encoder.num_layers == model.decoder.num_layers == 6
    assert model.encoder.layer_cfg.ffn_cfg.feedforward_channels == 2048
    assert model.test_cfg.max_per_img == 300
    assert model.data_preprocessor.pad_size_divisor == 32

    ow = cfg.optim_wrapper
    assert ow.optimizer.type == 'AdamW'
    assert ow.constructor == 'InternImageLayerDecayOptimizerConstructor'
    assert set(ow.paramwise_cfg) == {'layer_decay_rate', 'offset_lr_scale'}
    assert ow.paramwise_cfg.offset_lr_scale == 1e-3
    assert ow.clip_grad.norm_type == 2

    assert cfg.train_dataloader.batch_size == 1
    assert 'base_batch_size' not in cfg.auto_scale_lr
    assert cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt
    assert (cfg.train_cfg.type, cfg.train_cfg.val_interval) == ('IterBasedTrainLoop', 200)
    assert [dict(s) for s in cfg.param_scheduler] == [
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500)]
    ckpt = cfg.default_hooks.checkpoint
    assert (ckpt.by_epoch, ckpt.interval, ckpt.max_keep_ckpts, ckpt.save_best) == (
        False, 200, 3, 'auto')
    assert ckpt.type == 'AtomicCheckpointHook'  # it picks the local_atomic backend
    assert cfg.log_processor.by_epoch is False

    train = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in train] == ['LoadImageFromFile', 'LoadAnnotations', 'RandomFlip',
                                       'RandomResize', 'PackDetInputs']
    assert train[2].prob == 0.5
    assert train[3].scale == [(2000, 600), (2000, 1800)] and train[3].keep_ratio
    test = cfg.test_dataloader.dataset.pipeline
    assert [t.type for t in test][:2] == ['LoadImageFromFile', 'Resize']
    assert test[1].scale == (2000, 1000) and test[1].keep_ratio
    assert cfg.test_evaluator.metric == 'bbox'

    assert cfg.runner_type == 'StrictLoadRunner'
    assert [h.type for h in cfg.custom_hooks] == ['RNGStateHook', 'DataCheckHook']


def test_cb_multi_scale_test(load):
    """The _ms config is the _ss model and training, plus a flip x 3-scale
    test through mmdet's DetTTAModel (the tools' --tta)."""
    ss, ms = load(CB), load(CB_MS)
    assert ms.model == ss.model and ms.optim_wrapper == ss.optim_wrapper
    assert ms.train_dataloader == ss.train_dataloader and ms.load_from == ss.load_from
    assert ms.tta_model == dict(
        type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                         max_per_img=300))
    scales, flips = ms.tta_pipeline[1].transforms[:2]
    assert [(t.type, t.scale, t.keep_ratio) for t in scales] == [
        ('Resize', (2000, s), True) for s in (800, 1000, 1200)]
    assert [t.prob for t in flips] == [0., 1.]
    assert {'flip', 'flip_direction'} <= set(ms.tta_pipeline[1].transforms[-1][0].meta_keys)


def test_cb_layer_decay_is_the_references(load, zoo):
    """As in the reference, the composite backbone trains at the full lr, the
    level embedding at lr x decay**51 and the deformable attentions' sampling
    offsets at lr x 1e-3 (built on the meta device)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS
    cfg = load(CB)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    lr = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            lr[name] = group['lr']
    base, decay = zoo[CB].get('Learning Rate'), zoo[CB].get('Layer Decay')
    backbone = [v for k, v in lr.items() if k.startswith('backbone.')]
    assert len(backbone) == len(list(model.backbone.parameters()))
    assert set(backbone) == {base}
    assert lr['level_embed'] == pytest.approx(base * decay**51)
    offsets = [v for k, v in lr.items() if 'sampling_offsets' in k]
    assert len(offsets) == 24 and offsets == pytest.approx([base * 1e-3] * 24)
    assert lr['bbox_head.cls_branches.0.weight'] == base
