"""The published InternImage variants (T/S/B/L/XL/H/G): the one table.

``InternImage(arch='l')`` builds a variant by name; ``InternImage`` exposes
this table as its class attribute ``arch_settings``. Each entry holds the
architecture arguments of one variant as the model zoo uses them; an
argument an entry leaves out takes its value from :data:`DEFAULT_ARCH`.

:func:`get_arch` returns a fresh copy of an entry, optionally with
overrides, for code that needs the numbers without building a model::

    get_arch('xl', drop_path_rate=0.6)['channels']  # 192
"""
import copy
from typing import Any, Dict, Mapping, Optional, Union

#: Keys that name a model: a variant sets them; without ``arch``, or with an
#: ``arch`` dict, they must be given. (The reference's constructor defaults,
#: channels 64 with groups 3-6-12-24, build no model: 3 does not divide 64.)
REQUIRED_ARCH_KEYS = ('channels', 'depths', 'groups')

#: The other architecture arguments' values where neither the variant nor
#: the caller gives them: the reference model's constructor defaults, so the
#: reference's long form ``InternImage(channels=..., depths=..., groups=...,
#: ...)`` builds the same model here.
DEFAULT_ARCH: Dict[str, Any] = dict(
    mlp_ratio=4., drop_path_rate=0.2, norm_layer='LN', layer_scale=None, offset_scale=1.0,
    post_norm=False, with_cp=False, dw_kernel_size=None, level2_post_norm=False,
    level2_post_norm_block_ids=None, res_post_norm=False, center_feature_scale=False)

#: The arguments a variant (or an ``arch`` dict) may set.
ARCH_KEYS = REQUIRED_ARCH_KEYS + tuple(DEFAULT_ARCH)

#: The architecture arguments the backbone splits per stage (a width, a
#: depth and groups each, a slice of the drop-path rates, the stage-2 norms).
PER_STAGE_KEYS = ('channels', 'depths', 'groups', 'drop_path_rate', 'level2_post_norm',
                  'level2_post_norm_block_ids')
#: The others, which every stage (``InternImageStage``) takes as they are.
STAGE_KEYS = tuple(k for k in ARCH_KEYS if k not in PER_STAGE_KEYS)

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
    """A copy of the table entry of variant ``name``, with ``overrides``.

    Args:
        name: 't', 's', 'b', 'l', 'xl', 'h' or 'g' (any case).
        **overrides: constructor arguments that replace or add to the entry.

    Returns:
        A new dict; changing it leaves the table untouched.

    Raises:
        ValueError: ``name`` is not a variant.
    """
    if not isinstance(name, str) or name.lower() not in ARCH_SETTINGS:
        raise ValueError(f'unknown InternImage variant {name!r}; '
                         f'choose from {sorted(ARCH_SETTINGS)}')
    settings = copy.deepcopy(ARCH_SETTINGS[name.lower()])
    settings.update(overrides)
    return settings


def resolve_arch(arch: Union[str, Mapping[str, Any], None],
                 overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Every architecture argument (all of :data:`ARCH_KEYS`) for ``arch``.

    Args:
        arch: a variant name (see :func:`get_arch`); a dict of architecture
            arguments; or None (the reference's long form: ``overrides``
            give the architecture).
        overrides: explicit arguments; they win over the variant's values.

    Returns:
        :data:`DEFAULT_ARCH` updated with the variant, then with ``overrides``.

    Raises:
        ValueError: an unknown variant name, an ``arch`` dict with unknown
            keys, an ``arch`` of another type, or (without a variant name)
            ``channels``, ``depths`` or ``groups`` given neither by the
            ``arch`` dict nor by ``overrides``.
    """
    settings = copy.deepcopy(DEFAULT_ARCH)
    if isinstance(arch, str):
        settings.update(get_arch(arch))
    elif isinstance(arch, Mapping):
        unknown = sorted(set(arch) - set(ARCH_KEYS))
        if unknown:
            raise ValueError(f'arch dict has unknown key(s) {unknown}; allowed: '
                             f'{list(ARCH_KEYS)}')
        settings.update(copy.deepcopy(dict(arch)))
    elif arch is not None:
        raise ValueError(f'arch must be a variant name, a dict or None, got '
                         f'{type(arch).__name__}')
    settings.update(copy.deepcopy(dict(overrides or {})))
    missing = [k for k in REQUIRED_ARCH_KEYS if k not in settings]
    if missing:
        where = 'the arch dict' if arch is not None else 'arch=None'
        raise ValueError(f'InternImage: {where} needs {missing} as well: name a variant '
                         f"(arch='t', 's', 'b', 'l', 'xl', 'h' or 'g') or give channels, "
                         f'depths and groups')
    return settings


def check_arch_settings(settings: Dict[str, Any]) -> None:
    """Refuse architecture settings that cannot build a model, naming them.

    Args:
        settings: resolved architecture arguments (see :func:`resolve_arch`).

    Raises:
        ValueError: ``channels`` or a depth that is not a positive int
            (``channels=16.5``), a non-positive ``mlp_ratio``, ``depths`` or
            ``groups`` that are not lists;
            ``depths`` and ``groups`` of different lengths; or a group count
            that does not divide its stage's width.
    """
    channels, depths, groups = settings['channels'], settings['depths'], settings['groups']
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise ValueError(f'channels must be a positive int, got {channels!r}')
    for key, value in (('depths', depths), ('groups', groups)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f'{key} must be a list of positive ints (one per stage), '
                             f'got {value!r}')
    mlp_ratio = settings['mlp_ratio']
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) \
            or mlp_ratio <= 0 or int(channels * mlp_ratio) <= 0:
        raise ValueError(f'mlp_ratio must be a positive number (with channels={channels}, '
                         f'a hidden width of at least 1), got {mlp_ratio!r}')
    if len(depths) != len(groups):
        raise ValueError(f'depths {depths} and groups {groups} differ in length')
    if not depths:
        raise ValueError('depths must name at least one stage, got []')
    for i, (depth, group) in enumerate(zip(depths, groups)):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
            raise ValueError(f'depths[{i}] must be a positive int, got {depth!r} '
                             f'(depths={depths})')
        width = channels * 2**i
        if isinstance(group, bool) or not isinstance(group, int) or group <= 0 \
                or width % group:
            raise ValueError(f'groups[{i}]={group!r} must be a positive divisor of the '
                             f'stage-{i} width {width} (channels={channels} * 2**{i}); '
                             f'groups={groups}')
