"""Layer-wise lr decay: every parameter's lr and weight decay, worked out by
hand from the reference's rules, the backbone's ownership of layer depths,
and scheduler behaviour."""
import copy
from typing import Dict, Tuple

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.scheduler import LinearLR, MultiStepLR, PolyLR
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

import projects.internimage.engine.layer_decay as ld_mod
from projects.internimage import InternImage, InternImageLayerDecayOptimizerConstructor
from tests.helpers import REPO_ROOT

BASE_LR, BASE_WD = 1e-3, 0.05
DEPTHS = [1, 1, 2, 1]  # num_layers 5 -> L = 7: ids 0..6, 6 = neck/heads


class TinyDetector(nn.Module):
    """A tiny InternImage plus a 'neck' and a DETR-like 'head'."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = InternImage(
            core_op='DCNv3_pytorch', channels=16, depths=DEPTHS, groups=[1, 2, 4, 8],
            layer_scale=1.0, post_norm=False, level2_post_norm=True,
            level2_post_norm_block_ids=[0, 1], center_feature_scale=True)
        self.level_embed = nn.Parameter(torch.zeros(4, 8))
        self.neck = nn.Linear(128, 8)
        self.head = nn.Module()
        self.head.sampling_offsets = nn.Linear(8, 4)
        self.head.reference_points = nn.Linear(8, 2)
        self.head.norm = nn.LayerNorm(8)
        self.head.frozen = nn.Parameter(torch.zeros(3, 3), requires_grad=False)


# Layer id of each parameter, by name prefix, worked out by hand.
LAYER_IDS = {
    'backbone.patch_embed.': 0,
    'level_embed': 0,   # mmdet 3.x DINO's level embeddings
    'backbone.levels.0.blocks.0.': 1,
    'backbone.levels.0.norm.': 2,             # 1 + sum(depths[:1])
    'backbone.levels.0.downsample.': 2,
    'backbone.levels.1.blocks.0.': 2,         # 0 + 1 + 1
    'backbone.levels.1.norm.': 3,             # 1 + sum(depths[:2])
    'backbone.levels.1.downsample.': 3,
    'backbone.levels.2.blocks.0.': 3,         # 0 + 1 + 2
    'backbone.levels.2.post_norms.0.': 3,     # quirk: id of block 0
    'backbone.levels.2.blocks.1.': 4,
    'backbone.levels.2.post_norms.1.': 4,     # quirk: id of block 1
    'backbone.levels.2.norm.': 5,             # 1 + sum(depths[:3])
    'backbone.levels.2.downsample.': 5,
    'backbone.levels.3.blocks.0.': 5,         # 0 + 1 + 4
    'backbone.levels.3.norm.': 5,             # quirk: 1 + sum(depths[:3]), not [:4]
    'neck.': 6,
    'head.': 6,
}

# Parameters with weight decay (matrices / conv kernels whose names contain
# neither 'norm' nor 'sampling_offsets'); every other one has none.
DECAY_BLOCK_SUFFIXES = ('dcn.input_proj.weight', 'dcn.output_proj.weight',
                        'dcn.offset.weight', 'dcn.mask.weight', 'dcn.dw_conv.0.weight',
                        'dcn.center_feature_scale_proj_weight', 'mlp.fc1.weight',
                        'mlp.fc2.weight')
DECAY_OTHERS = {'backbone.patch_embed.conv1.weight', 'backbone.patch_embed.conv2.weight',
                'backbone.levels.0.downsample.conv.weight',
                'backbone.levels.1.downsample.conv.weight',
                'backbone.levels.2.downsample.conv.weight', 'level_embed', 'neck.weight',
                'head.reference_points.weight'}
OFFSET_PARAMS = {'head.sampling_offsets.weight', 'head.sampling_offsets.bias',
                 'head.reference_points.weight', 'head.reference_points.bias'}

# lr scale per layer id with layer_decay_rate 0.5: 0.5 ** (L - id - 1).
SCALE = {0: 1 / 64, 1: 1 / 32, 2: 1 / 16, 3: 1 / 8, 4: 1 / 4, 5: 1 / 2, 6: 1.}


def hand_layer_id(name: str) -> int:
    matches = [v for k, v in LAYER_IDS.items() if name.startswith(k)]
    assert len(matches) == 1, name
    return matches[0]


def hand_decay(name: str) -> bool:
    return ('.blocks.' in name and name.endswith(DECAY_BLOCK_SUFFIXES)) or name in DECAY_OTHERS


def build(model: nn.Module, **paramwise):
    cfg = dict(optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
               constructor='InternImageLayerDecayOptimizerConstructor',
               paramwise_cfg=dict(layer_decay_rate=0.5, **paramwise))
    return build_optim_wrapper(model, cfg)


def per_param(optim_wrapper) -> Dict[str, Tuple[float, float, dict]]:
    result = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            assert name not in result
            result[name] = (group['lr'], group['weight_decay'], group)
    return result


def test_every_parameter_plain_rules_with_offset_lr_scale():
    torch.manual_seed(0)
    model = TinyDetector()
    table = per_param(build(model, offset_lr_scale=0.01))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(table) == sorted(trainable)  # frozen ones left out
    # 5 blocks x 24 + stem 8 + 4 stage norms x 2 + 3 downsamples x 3 + 2 post norms
    # x 2 = 149 in the backbone; level_embed 1, neck 2, head 6 (frozen one excluded).
    assert len(trainable) == 149 + 1 + 2 + 6
    for name in trainable:
        lr, wd, group = table[name]
        layer_id = hand_layer_id(name)
        scale = SCALE[layer_id] * (0.01 if name in OFFSET_PARAMS else 1.)
        assert group['layer_id'] == layer_id, name
        assert lr == pytest.approx(BASE_LR * scale, rel=1e-12), name
        assert group['lr_scale'] == pytest.approx(scale, rel=1e-12), name
        assert wd == (BASE_WD if hand_decay(name) else 0.), name
    # DCNv3's own `offset` is not a `sampling_offsets`: offset_lr_scale skips it.
    assert table['backbone.levels.1.blocks.0.dcn.offset.weight'][0] == pytest.approx(
        BASE_LR / 16)
    # One group per (layer id, decay, special lr): ids 0..5 x 2, plus neck and
    # head at id 6: decay, no decay, and the offset-scaled decay / no decay.
    groups = build(TinyDetector(), offset_lr_scale=0.01).optimizer.param_groups
    assert len(groups) == 16
    assert len({g['group_name'] for g in groups}) == 16


def test_every_parameter_dino_head_and_backbone_small_lr():
    model = TinyDetector()
    table = per_param(build(model, offset_lr_scale=0.01, dino_head=True,
                            backbone_small_lr=True))
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr, wd, _ = table[name]
        layer_id = hand_layer_id(name)
        scale = SCALE[layer_id] * (0.1 if layer_id < 6 else 1.)  # small lr below 1 only
        if name in OFFSET_PARAMS:
            scale *= 0.1  # dino_head at id L - 1 wins over offset_lr_scale
        assert lr == pytest.approx(BASE_LR * scale, rel=1e-12), name
        assert wd == (BASE_WD if hand_decay(name) else 0.), name


def test_decay_rate_one_gives_uniform_lr():
    table = per_param(build(TinyDetector(), ))
    lrs = {lr for lr, _, _ in table.values()}
    assert len(lrs) == 7  # 0.5 decay: one lr per id
    cfg = dict(optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
               constructor='InternImageLayerDecayOptimizerConstructor',
               paramwise_cfg=dict(layer_decay_rate=1.0))
    wrapper = build_optim_wrapper(TinyDetector(), cfg)
    assert {g['lr'] for g in wrapper.optimizer.param_groups} == {BASE_LR}


def test_logs_group_table(monkeypatch):
    lines = []
    monkeypatch.setattr(ld_mod, 'print_log', lambda msg, logger=None, **kw: lines.append(msg))
    build(TinyDetector())
    assert len(lines) == 1
    assert 'layer_0_decay' in lines[0] and 'lr_scale' in lines[0]
    assert len(lines[0].splitlines()) == 2 + 14


@pytest.mark.parametrize('paramwise, match', [
    (dict(layer_decay_rate=0.9, custom_keys={}), 'custom_keys'),
    (dict(layer_decay_rate=0.9, decay_rate=1), 'decay_rate'),
    (dict(num_layers=5, depths=DEPTHS), 'layer_decay_rate'),
    # the reference's keys must agree with the built backbone; both values named
    (dict(layer_decay_rate=0.9, depths=[4, 4, 18, 4]),
     r'paramwise_cfg.depths=\[4, 4, 18, 4\] disagrees .* backbone.depths=\[1, 1, 2, 1\]'),
    (dict(layer_decay_rate=0.9, num_layers=30),
     r'paramwise_cfg.num_layers=30 disagrees .* backbone has 5 layers'),
])
def test_bad_paramwise_cfg(paramwise, match):
    cfg = dict(optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=BASE_WD),
               constructor='InternImageLayerDecayOptimizerConstructor',
               paramwise_cfg=paramwise)
    with pytest.raises(ValueError, match=match):
        build_optim_wrapper(TinyDetector(), cfg)


def test_registered_names():
    for name in ('InternImageLayerDecayOptimizerConstructor',
                 'CustomLayerDecayOptimizerConstructor'):  # the reference's name
        assert OPTIM_WRAPPER_CONSTRUCTORS.get(name) is \
            InternImageLayerDecayOptimizerConstructor


def ratios(wrapper):
    return [g['lr'] / g['lr_scale'] for g in wrapper.optimizer.param_groups]


@pytest.mark.filterwarnings('ignore:Detected call of')
def test_schedulers_keep_group_ratios():
    model = TinyDetector()
    wrapper = build(model, offset_lr_scale=0.01)
    scales = [g['lr_scale'] for g in wrapper.optimizer.param_groups]
    warmup = LinearLR(wrapper, start_factor=1e-3, by_epoch=False, begin=0, end=4)
    steps = MultiStepLR(wrapper, milestones=[6, 8], gamma=0.1, by_epoch=False)
    seen = []
    # One real optimizer step: AdamW accepts the groups and their extra keys.
    loss = model.neck(model.backbone(torch.randn(1, 3, 32, 32))[-1].mean((2, 3))).sum()
    wrapper.update_params(loss)
    for it in range(10):
        r = ratios(wrapper)
        assert max(r) == pytest.approx(min(r), rel=1e-9), it
        seen.append(r[0] / BASE_LR)
        warmup.step()
        steps.step()
    assert seen[0] == pytest.approx(1e-3)
    assert seen[4] == pytest.approx(1.) and seen[5] == pytest.approx(1.)
    assert seen[6] == pytest.approx(0.1) and seen[8] == pytest.approx(0.01)
    assert [g['lr_scale'] for g in wrapper.optimizer.param_groups] == scales

    wrapper = build(TinyDetector())
    poly = PolyLR(wrapper, eta_min=0., power=1.0, by_epoch=False, begin=0, end=10)
    for it in range(9):
        r = ratios(wrapper)
        assert max(r) == pytest.approx(min(r), rel=1e-9), it
        # mmengine's PolyLR reaches eta_min at step end - 1 (9 here)
        assert r[0] == pytest.approx(BASE_LR * (1 - it / 9), rel=1e-9), it
        poly.step()


def test_reference_keys_that_agree_change_nothing():
    plain = per_param(build(TinyDetector(), offset_lr_scale=0.01))
    with_keys = per_param(build(TinyDetector(), offset_lr_scale=0.01, num_layers=5,
                                depths=DEPTHS))
    assert {k: v[:2] for k, v in plain.items()} == {k: v[:2] for k, v in with_keys.items()}


def test_backbone_owns_layer_depth():
    """``get_layer_depth`` carries the rules of :data:`LAYER_IDS` and counts
    ``sum(depths) + 2`` ids; another prefix moves the backbone."""
    backbone = TinyDetector().backbone
    for name, _ in TinyDetector().named_parameters():
        # head parameters in layer 0 are the constructor's rule, not the backbone's
        expected = 6 if name.startswith(ld_mod.LAYER0_HEAD_PREFIXES) else hand_layer_id(name)
        assert backbone.get_layer_depth(name) == (expected, 7), name
    assert backbone.get_layer_depth('levels.2.blocks.1.mlp.fc1.weight', prefix='') == (4, 7)
    assert backbone.get_layer_depth('model.backbone.levels.3.norm.0.weight',
                                    prefix='model.backbone.') == (5, 7)
    assert backbone.get_layer_depth('backbone.levels.3.norm.0.weight',
                                    prefix='model.backbone.') == (6, 7)


def test_model_without_layer_depths_is_refused():
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    with pytest.raises(ValueError, match='backbone.*get_layer_depth.*Linear'):
        build(model)


DEMO_CONFIGS = ['mask_rcnn_internimage_demo.py', 'upernet_internimage_demo.py']


@pytest.mark.parametrize('name', DEMO_CONFIGS)
def test_demo_config_layer_decay_follows_its_backbone(name):
    """The demo configs shrink T's backbone to depths 1-1-2-1. They used to
    inherit T's ``depths=[4, 4, 18, 4]`` / ``num_layers=30``, so a decay rate
    of 0.9 gave lr scales 0.9**31..0.9**4 (0.038..0.66) instead of
    0.9**6..0.9**0. Now the backbone gives the layer ids: 7 ids, scales
    0.9**(6 - id); and the stale keys, if a config brought them back, raise."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'demo' / name))
    if cfg.default_scope == 'mmdet':
        from mmdet.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.default_scope)
    assert 'num_layers' not in cfg.optim_wrapper.paramwise_cfg
    assert 'depths' not in cfg.optim_wrapper.paramwise_cfg
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.backbone.depths == [1, 1, 2, 1]
    optim = copy.deepcopy(cfg.optim_wrapper)
    optim.paramwise_cfg.layer_decay_rate = 0.9
    groups = build_optim_wrapper(model, optim).optimizer.param_groups
    scales = {g['layer_id']: g['lr_scale'] for g in groups}
    assert sorted(scales) == list(range(7))
    for layer_id, scale in scales.items():
        assert scale == pytest.approx(0.9**(6 - layer_id), rel=1e-12), layer_id
    assert min(scales.values()) == pytest.approx(0.531441)
    stale = copy.deepcopy(optim)
    stale.paramwise_cfg.update(num_layers=30, depths=[4, 4, 18, 4])
    with pytest.raises(ValueError, match=r'depths=\[4, 4, 18, 4\].*\[1, 1, 2, 1\]'):
        build_optim_wrapper(model, stale)
