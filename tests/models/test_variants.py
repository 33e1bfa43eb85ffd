"""All published variants build with their published widths and sizes.

Built on the meta device (no memory, no forward). Parameter counts:

- T: 28,769,520 — the published "28.8M", and equal to a hand count.
- Others: the values this implementation gives, each equal to the independent
  closed-form count :func:`expected_params` below (written from the published
  structure, not from the code), and consistent with the published totals
  (classification S 50M, B 97M, L 223M, XL 335M, H 1.08B, G 3B include a
  classifier head of a few million; Mask R-CNN T 49M = 28.8M + ~20M of
  FPN/RPN/RoI heads, S 69M, B 115M).
"""
import re

import pytest
import torch

from projects.internimage import ARCH_SETTINGS, InternImage, get_arch
from projects.internimage.models.arch_settings import resolve_arch

EXPECTED = {
    't': 28_769_520,
    's': 48_502_560,
    'b': 94_909_920,
    'l': 218_952_370,
    'xl': 328_971_228,
    'h': 1_073_122_480,
    'g': 3_052_781_184,
}


def expected_params(channels, depths, groups, mlp_ratio=4., layer_scale=None,
                    post_norm=False, dw_kernel_size=None, res_post_norm=False,
                    level2_post_norm=False, level2_post_norm_block_ids=None,
                    center_feature_scale=False, **_) -> int:
    """Closed-form parameter count of the published structure (stem, blocks,
    stage norms, downsampling), written independently of the code."""
    half = channels // 2
    total = (3 * half * 9 + half) + 2 * half + (half * channels * 9 + channels) + 2 * channels
    k_dw = dw_kernel_size or 3
    for i, (depth, g) in enumerate(zip(depths, groups)):
        c = channels * 2**i
        hidden = int(c * mlp_ratio)
        block = 4 * c                                      # norm1, norm2
        block += 2 * (c * c + c)                           # input_proj, output_proj
        block += k_dw * k_dw * c + c + 2 * c               # dw_conv + its LN
        block += c * g * 18 + g * 18 + c * g * 9 + g * 9   # offset, mask
        block += (g * c + g) if center_feature_scale else 0
        block += c * hidden + hidden + hidden * c + c      # mlp
        block += 2 * c if layer_scale is not None else 0
        block += 4 * c if res_post_norm else 0
        total += depth * block
        if i == 2 and level2_post_norm and level2_post_norm_block_ids:
            total += 2 * c * len(level2_post_norm_block_ids)
        if not post_norm or center_feature_scale:
            total += 2 * c
        if i < len(depths) - 1:
            total += c * 2 * c * 9 + 2 * 2 * c
    return total


def build_meta(name: str) -> InternImage:
    with torch.device('meta'):
        return InternImage(core_op='DCNv3_pytorch', **get_arch(name))


@pytest.mark.parametrize('name', sorted(ARCH_SETTINGS))
def test_variant_builds_with_expected_size(name):
    model = build_meta(name)
    arch = ARCH_SETTINGS[name]
    count = sum(p.numel() for p in model.parameters())
    assert count == expected_params(**arch)
    assert count == EXPECTED[name]
    widths = [lvl.channels for lvl in model.levels]
    assert widths == [arch['channels'] * 2**i for i in range(4)]
    assert [len(lvl.blocks) for lvl in model.levels] == arch['depths']
    assert [lvl.blocks[0].dcn.group for lvl in model.levels] == arch['groups']
    assert model.num_features == arch['channels'] * 8


def test_t_is_28_8m():
    count = sum(p.numel() for p in build_meta('t').parameters())
    assert abs(count / 1e6 - 28.8) < 0.1


def test_get_arch_copies_and_overrides():
    arch = get_arch('XL', drop_path_rate=0.6)
    assert arch['drop_path_rate'] == 0.6 and ARCH_SETTINGS['xl']['drop_path_rate'] == 0.4
    arch['depths'].append(1)
    assert ARCH_SETTINGS['xl']['depths'] == [5, 5, 24, 5]
    with pytest.raises(ValueError, match='variant'):
        get_arch('m')


def _settings(**kwargs) -> dict:
    kwargs.setdefault('core_op', 'DCNv3_pytorch')
    with torch.device('meta'):
        return InternImage(**kwargs).settings


ARCH_KEYS_OF_SETTINGS = ('channels', 'depths', 'groups', 'mlp_ratio', 'drop_path_rate',
                         'norm_layer', 'layer_scale', 'offset_scale', 'post_norm', 'with_cp',
                         'dw_kernel_size', 'level2_post_norm', 'level2_post_norm_block_ids',
                         'res_post_norm', 'center_feature_scale')


@pytest.mark.parametrize('name', sorted(ARCH_SETTINGS))
def test_arch_by_name_equals_long_form(name):
    """``arch='l'`` builds exactly what the long form of the table entry builds."""
    by_name = _settings(arch=name)
    long_form = _settings(**get_arch(name))
    assert by_name == long_form
    for key, value in ARCH_SETTINGS[name].items():
        assert by_name[key] == value, key
    assert resolve_arch(name.upper()) == resolve_arch(name)


def test_arch_table_is_the_class_attribute():
    assert InternImage.arch_settings is ARCH_SETTINGS
    with torch.device('meta'):
        assert InternImage(core_op='DCNv3_pytorch', arch='T').arch == 't'


def test_explicit_kwargs_override_the_table():
    settings = _settings(arch='xl', drop_path_rate=0.6, with_cp=True, out_indices=(1, 2, 3),
                         core_op='DCNv3')
    assert settings['core_op'] == 'DCNv3'
    assert settings['drop_path_rate'] == 0.6 and settings['with_cp'] is True
    assert settings['out_indices'] == [1, 2, 3]
    assert settings['channels'] == 192 and settings['offset_scale'] == 2.0
    # an override to the value None wins too (layer_scale=None: no gamma)
    with torch.device('meta'):
        model = InternImage(core_op='DCNv3_pytorch', arch='t', layer_scale=None)
    assert model.settings['layer_scale'] is None
    assert not any('gamma' in n for n, _ in model.named_parameters())
    with torch.device('meta'):
        model = InternImage(core_op='DCNv3_pytorch', arch='t')
    assert any(n.endswith('gamma1') for n, _ in model.named_parameters())


def test_no_arch_is_the_reference_long_form():
    """``arch=None``: channels, depths and groups must be given; the other
    arguments default as in the reference constructor (no layer scale,
    pre-norm, drop path 0.2, mlp ratio 4)."""
    settings = _settings(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])
    assert settings['layer_scale'] is None and settings['post_norm'] is False
    assert settings['drop_path_rate'] == 0.2 and settings['mlp_ratio'] == 4.
    assert settings['offset_scale'] == 1.0 and settings['dw_kernel_size'] is None
    # the long form keeps working unchanged: T spelled out
    assert _settings(**get_arch('t')) == _settings(arch='t')
    # the reference's own defaults (64 wide, groups 3-6-12-24) build no model:
    # a bare InternImage() says what to give
    with pytest.raises(ValueError, match=r"arch=None needs \['channels', 'depths', "
                                         r"'groups'\].*name a variant"):
        _settings()
    with pytest.raises(ValueError, match=r"needs \['groups'\]"):
        _settings(channels=16, depths=[1, 1, 2, 1])


def test_arch_dict():
    arch = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8], layer_scale=1.0)
    settings = _settings(arch=arch, drop_path_rate=0.)
    assert settings['channels'] == 16 and settings['layer_scale'] == 1.0
    assert settings['drop_path_rate'] == 0. and settings['offset_scale'] == 1.0
    with pytest.raises(ValueError, match=r"needs \['groups'\]"):
        _settings(arch=dict(channels=16, depths=[1, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['width'\]"):
        _settings(arch=dict(arch, width=3))


@pytest.mark.parametrize('arch, match', [('m', "unknown InternImage variant 'm'"),
                                         (3, 'arch must be a variant name, a dict or None')])
def test_bad_arch(arch, match):
    with pytest.raises(ValueError, match=match):
        _settings(arch=arch)


@pytest.mark.parametrize('key, value, message', [
    ('channels', 16.5, 'channels must be a positive int, got 16.5'),
    ('channels', '16', "channels must be a positive int, got '16'"),
    ('depths', 4, 'depths must be a list of positive ints (one per stage), got 4'),
    ('groups', [1, 2, 4.0, 8], 'groups[2]=4.0 must be a positive divisor'),
])
def test_wrong_types_are_named_before_the_neck_check(key, value, message):
    """``channels=16.5`` used to surface as a neck in_channels mismatch."""
    from projects.internimage import check_neck_in_channels
    model = dict(backbone=dict(type='InternImage', channels=16, depths=[1, 1, 2, 1],
                               groups=[1, 2, 4, 8]),
                 neck=dict(type='FPN', in_channels=[16, 32, 64, 128]))
    check_neck_in_channels(model)
    model['backbone'][key] = value
    with pytest.raises(ValueError) as info:
        check_neck_in_channels(model)
    assert str(info.value).startswith(f'model.backbone (InternImage): {message}')
    assert 'in_channels' not in str(info.value)
    with pytest.raises(ValueError, match=re.escape(message)):
        InternImage(**{k: v for k, v in model['backbone'].items() if k != 'type'})
