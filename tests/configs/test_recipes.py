"""The configs carry the published recipes (the model zoo and the reference
configs): backbone, heads, optimizer, schedule, augmentation, EMA and
evaluation. The variants' numbers come from the one table,
``InternImage.arch_settings``; each config's variant and the recipe numbers
that the metafile records (checkpoint, lr, weight decay, layer decay, gradient
clip, batch, schedule length) come from ``configs/metafile.yml`` (checked
against every config in test_metafile.py)."""
import pytest
from tests.helpers import REPO_ROOT

from projects.internimage import InternImage, get_arch
from projects.internimage.models.arch_settings import ARCH_KEYS, resolve_arch

ZOO = REPO_ROOT / 'configs'
#: The Objects365 pre-trained DINO configs have their own recipe
#: (test_objects365_recipes.py).
COCO = sorted(p.stem for p in (ZOO / 'coco').glob('*.py') if 'objects365' not in p.stem)
ADE = sorted(p.stem for p in (ZOO / 'ade20k').glob('upernet_*.py'))


@pytest.fixture
def load(load_cfg):
    """``load(group, name)``: the config ``configs/<group>/<name>.py``."""
    return lambda group, name: load_cfg(REPO_ROOT / 'configs' / group /
                                        f'{name}.py')


def check_backbone(cfg, variant: str, **overrides) -> None:
    """The config names ``variant`` and resolves to its table entry (plus
    ``overrides``) and the compiled core op."""
    bb = cfg.model.backbone
    assert bb.type == 'InternImage' and bb.arch == variant
    assert bb.get('core_op', 'DCNv3') == 'DCNv3'
    given = {k: bb[k] for k in ARCH_KEYS if k in bb}
    assert given == overrides, f'keys beside arch={variant!r}: {given}'
    resolved = resolve_arch(bb.arch, given)
    table = get_arch(variant, **overrides)
    assert {k: resolved[k] for k in table} == table
    assert table['channels'] == InternImage.arch_settings[variant]['channels']
    assert bb.init_cfg.type == 'Pretrained'


def check_optimizer(cfg) -> None:
    """AdamW with the default betas; layer decay (where the recipe has it)
    through the project's constructor, with the layer depths left to the
    backbone; gradient clipping (where the recipe has it) by the 2-norm. The
    numbers are the metafile's (test_metafile.py)."""
    ow = cfg.optim_wrapper
    assert ow.type == 'OptimWrapper'
    assert ow.optimizer.type == 'AdamW'
    assert ow.optimizer.get('betas', (0.9, 0.999)) == (0.9, 0.999)
    if 'constructor' in ow:
        assert ow.constructor == 'InternImageLayerDecayOptimizerConstructor'
        # the backbone gives its layer depths: no copies in the config
        assert 'num_layers' not in ow.paramwise_cfg
        assert 'depths' not in ow.paramwise_cfg
    if ow.get('clip_grad') is not None:
        assert ow.clip_grad.norm_type == 2


@pytest.mark.parametrize('name', COCO)
def test_coco_recipe(name, load, zoo):
    variant = zoo[name].variant
    cfg = load('coco', name)
    overrides = {}
    if name == 'cascade_internimage_xl_fpn_3x_coco':
        overrides['drop_path_rate'] = 0.6
    if name.startswith('dino'):
        overrides['with_cp'] = variant == 't'
    check_backbone(cfg, variant, **overrides)
    check_optimizer(cfg)
    assert cfg.data_root == 'data/coco/'
    assert cfg.test_dataloader.dataset.data_root == 'data/coco/'
    # test at 1333x800 without flip
    test_ops = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert 'RandomFlip' not in test_ops
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (1333, 800)

    channels = get_arch(variant)['channels']
    widths = [channels * 2**i for i in range(4)]
    metrics = cfg.test_evaluator.metric
    if name.startswith('dino'):
        assert cfg.model.type == 'DINO'
        assert cfg.model.backbone.out_indices == (1, 2, 3)
        neck = cfg.model.neck
        assert (neck.type, neck.in_channels, neck.out_channels,
                neck.num_outs) == ('ChannelMapper', widths[1:], 256, 4)
        assert neck.norm_cfg == dict(type='GN', num_groups=32)
        assert cfg.model.num_queries == 900
        assert cfg.model.as_two_stage and cfg.model.with_box_refine
        dn = cfg.model.dn_cfg
        assert (dn.label_noise_scale, dn.box_noise_scale) == (0.5, 1.0)
        assert dn.group_cfg.num_dn_queries == 100
        # 12 epochs, step at 11, no warm-up (the published recipe)
        assert [(s.type, s.get('milestones')) for s in cfg.param_scheduler] == [
            ('MultiStepLR', [11])]
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.model.encoder.num_layers == 6
        assert cfg.model.decoder.num_layers == 6
        head = cfg.model.bbox_head
        assert head.loss_cls.type == 'FocalLoss'
        assert head.loss_bbox.loss_weight == 5.0
        assert head.loss_iou.loss_weight == 2.0
        assert cfg.model.test_cfg.max_per_img == (100 if variant == 't' else
                                                  300)
        assert metrics == 'bbox'
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.param_scheduler[-1].milestones == [11]
        crop = cfg.train_pipeline[3].transforms[1][1]
        assert crop.type == 'RandomCrop' and not crop.allow_negative_crop
    else:
        assert cfg.model.backbone.get('out_indices', (0, 1, 2, 3)) == (0, 1, 2, 3)
        neck = cfg.model.neck
        assert (neck.type, neck.in_channels, neck.out_channels,
                neck.num_outs) == ('FPN', widths, 256, 5)
        assert metrics == ['bbox', 'segm']
        epochs, steps = ((36, [27, 33]) if '_3x_' in name else (12, [8, 11]))
        assert cfg.train_cfg.max_epochs == epochs
        assert cfg.param_scheduler[-1].milestones == steps
        pipeline = cfg.train_dataloader.dataset.pipeline
        if '_3x_' in name:
            check_3x_pipeline(pipeline)
        else:
            assert [t.type for t in pipeline] == [
                'LoadImageFromFile', 'LoadAnnotations', 'Resize',
                'RandomFlip', 'PackDetInputs'
            ]
            assert pipeline[2].scale == (1333, 800)
    if not name.startswith('dino'):  # DINO: no warm-up (checked above)
        # linear warm-up over 500 iterations from 0.001
        warmup = cfg.param_scheduler[0]
        assert (warmup.type, warmup.start_factor, warmup.end,
                warmup.by_epoch) == ('LinearLR', 0.001, 500, False)

    if name.startswith('cascade'):
        heads = cfg.model.roi_head.bbox_head
        stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                [0.033, 0.033, 0.067, 0.067]]
        assert len(heads) == 3
        for head, std in zip(heads, stds):
            assert head.type == 'ConvFCBBoxHead'
            assert (head.num_shared_convs, head.num_shared_fcs) == (4, 1)
            assert head.norm_cfg == dict(type='SyncBN', requires_grad=True)
            assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
            assert head.reg_decoded_bbox and not head.reg_class_agnostic
            assert head.bbox_coder.target_stds == std
            assert head.num_classes == 80
    ema = [h for h in cfg.get('custom_hooks', []) if h.type == 'EMAHook']
    if name.startswith('cascade') and '_3x_' in name:
        assert len(ema) == 1
        assert (ema[0].ema_type, ema[0].momentum, ema[0].update_buffers) == (
            'ExpMomentumEMA', 0.0001, True)
        assert cfg.optim_wrapper.paramwise_cfg.offset_lr_scale == 0.01
    else:
        assert not ema
    if name.endswith('0.1x_backbone_lr'):
        assert cfg.optim_wrapper.paramwise_cfg == dict(
            custom_keys={'backbone': dict(lr_mult=0.1)})


def check_3x_pipeline(pipeline) -> None:
    """Flip, then one of (a) multi-scale or (b) multi-scale + crop."""
    assert [t.type for t in pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'RandomFlip', 'RandomChoice',
        'PackDetInputs'
    ]
    assert pipeline[1].with_mask
    short = [(1333, s) for s in range(480, 801, 32)]
    (a, ), (b1, crop, b2) = pipeline[3].transforms
    assert a.type == b2.type == 'RandomChoiceResize'
    assert a.scales == b2.scales == short and a.keep_ratio
    assert b1.scales == [(1333, 400), (1333, 500), (1333, 600)]
    assert (crop.type, crop.crop_type, crop.crop_size,
            crop.allow_negative_crop) == ('RandomCrop', 'absolute_range',
                                          (384, 600), True)


@pytest.mark.parametrize('name', ADE)
def test_ade20k_recipe(name, load, zoo):
    variant = zoo[name].variant
    crop = int(zoo[name].get('Crop Size').split('x')[0])
    cfg = load('ade20k', name)
    check_backbone(cfg, variant)
    check_optimizer(cfg)
    widths = [get_arch(variant)['channels'] * 2**i for i in range(4)]
    model = cfg.model
    assert model.pretrained is None
    assert model.decode_head.type == 'UPerHead'
    assert model.decode_head.in_channels == widths
    assert model.decode_head.in_index == [0, 1, 2, 3]
    assert model.decode_head.channels == 512
    assert model.decode_head.num_classes == 150
    aux = model.auxiliary_head
    assert (aux.type, aux.in_index, aux.in_channels, aux.num_classes) == (
        'FCNHead', 2, widths[2], 150)
    assert aux.loss_decode.loss_weight == 0.4
    assert model.test_cfg.mode == 'whole'
    assert model.data_preprocessor.size == (crop, crop)

    assert cfg.train_dataloader.dataset.data_root == (
        'data/ade/ADEChallengeData2016')
    pipeline = cfg.train_dataloader.dataset.pipeline
    resize = [t for t in pipeline if t.type == 'RandomResize'][0]
    assert resize.scale == (4 * crop, crop)
    assert resize.ratio_range == (0.5, 2.0)
    crop_op = [t for t in pipeline if t.type == 'RandomCrop'][0]
    assert crop_op.crop_size == (crop, crop) and crop_op.cat_max_ratio == 0.75
    assert {'RandomFlip', 'PhotoMetricDistortion'} <= {
        t.type
        for t in pipeline
    }
    test_resize = cfg.test_dataloader.dataset.pipeline[1]
    assert test_resize.scale == (4 * crop, crop) and test_resize.keep_ratio

    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_cfg.val_interval == 16000
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR',
                                                              1e-6, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 1.0,
                                                               0.0, 160000)
    assert cfg.val_evaluator.iou_metrics == ['mIoU']
