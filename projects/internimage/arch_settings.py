"""The published InternImage variants (T/S/B/L/XL/H/G) in one table.

Each entry holds the backbone constructor arguments that differ from the
defaults, as the model zoo uses them (SPEC-internimage.md, "Variants").
Use :func:`get_arch` to get a fresh copy, optionally with overrides::

    backbone = dict(type='InternImage', **get_arch('t'), out_indices=(1, 2, 3))
"""
import copy
from typing import Any, Dict

ARCH_SETTINGS: Dict[str, Dict[str, Any]] = {
    't': dict(channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32],
              mlp_ratio=4., drop_path_rate=0.2, norm_layer='LN',
              layer_scale=1.0, offset_scale=1.0, post_norm=False),
    's': dict(channels=80, depths=[4, 4, 21, 4], groups=[5, 10, 20, 40],
              mlp_ratio=4., drop_path_rate=0.3, norm_layer='LN',
              layer_scale=1.0, offset_scale=1.0, post_norm=True),
    'b': dict(channels=112, depths=[4, 4, 21, 4], groups=[7, 14, 28, 56],
              mlp_ratio=4., drop_path_rate=0.4, norm_layer='LN',
              layer_scale=1.0, offset_scale=1.0, post_norm=True),
    'l': dict(channels=160, depths=[5, 5, 22, 5], groups=[10, 20, 40, 80],
              mlp_ratio=4., drop_path_rate=0.4, norm_layer='LN',
              layer_scale=1.0, offset_scale=2.0, post_norm=True),
    # The 3x detection schedules raise drop_path_rate to 0.6.
    'xl': dict(channels=192, depths=[5, 5, 24, 5], groups=[12, 24, 48, 96],
               mlp_ratio=4., drop_path_rate=0.4, norm_layer='LN',
               layer_scale=1.0, offset_scale=2.0, post_norm=True),
    'h': dict(channels=320, depths=[6, 6, 32, 6], groups=[10, 20, 40, 80],
              mlp_ratio=4., drop_path_rate=0.5, norm_layer='LN',
              layer_scale=None, offset_scale=1.0, post_norm=False,
              dw_kernel_size=5, res_post_norm=True, level2_post_norm=True,
              level2_post_norm_block_ids=[5, 11, 17, 23, 29],
              center_feature_scale=True),
    'g': dict(channels=512, depths=[2, 2, 48, 4], groups=[16, 32, 64, 128],
              mlp_ratio=4., drop_path_rate=0.5, norm_layer='LN',
              layer_scale=None, offset_scale=1.0, post_norm=True,
              dw_kernel_size=5, level2_post_norm=True,
              level2_post_norm_block_ids=[5, 11, 17, 23, 29, 35, 41, 47],
              center_feature_scale=True, with_cp=True),
}


def get_arch(name: str, **overrides: Any) -> Dict[str, Any]:
    """A copy of the settings of variant ``name`` ('t' ... 'g', any case).

    ``overrides`` replace or add constructor arguments.
    """
    key = name.lower()
    if key not in ARCH_SETTINGS:
        raise ValueError(f'unknown InternImage variant {name!r}; '
                         f'choose from {sorted(ARCH_SETTINGS)}')
    settings = copy.deepcopy(ARCH_SETTINGS[key])
    settings.update(overrides)
    return settings
