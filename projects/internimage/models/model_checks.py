"""Whole-model config checks the backbone alone cannot make.

The backbone never sees the neck or heads that consume its features, so a
stage-width mismatch (``channels=80`` with an FPN built for 64-128-256-512)
would otherwise surface as a convolution shape error in the first forward
pass. :func:`check_neck_in_channels` compares the widths a config's
InternImage backbone produces with the ``in_channels`` of what reads them;
the tools call it after loading a config, before building the model.
"""
from typing import Any, List, Mapping, Optional, Sequence

from .arch_settings import ARCH_KEYS, check_arch_settings, resolve_arch
from .cb_internimage import composite_out_indices

#: The backbone types checked, and the stages each returns by default. A
#: ``CBInternImage`` returns the same stages from both its backbones.
BACKBONE_TYPES = {'InternImage': (0, 1, 2, 3), 'CBInternImage': (1, 2, 3)}


def backbone_out_indices(backbone_cfg: Mapping[str, Any]) -> List[int]:
    """The stages whose outputs an InternImage (or CBInternImage, per
    backbone) config returns."""
    kind = backbone_cfg.get('type')
    indices = backbone_cfg.get('out_indices', BACKBONE_TYPES.get(kind, (0, 1, 2, 3)))
    if kind == 'CBInternImage':
        indices = composite_out_indices(indices)
    return list(indices)


def backbone_out_channels(backbone_cfg: Mapping[str, Any]) -> List[int]:
    """The widths of the feature maps an InternImage backbone config returns.

    Args:
        backbone_cfg: the ``model.backbone`` config (``type='InternImage'``,
            or ``'CBInternImage'``: the widths of each of its backbones).

    Returns:
        ``channels * 2**i`` for each ``i`` of its ``out_indices``.

    Raises:
        ValueError: architecture settings the backbone would refuse
            (:func:`.arch_settings.check_arch_settings`: ``channels=16.5``...),
            named as the backbone names them, before any width comparison.
    """
    overrides = {k: backbone_cfg[k] for k in ARCH_KEYS if k in backbone_cfg}
    settings = resolve_arch(backbone_cfg.get('arch'), overrides)
    try:
        check_arch_settings(settings)
    except ValueError as e:
        kind = backbone_cfg.get('type', 'InternImage')
        raise ValueError(f'model.backbone ({kind}): {e}') from None
    channels = settings['channels']
    return [channels * 2**i for i in backbone_out_indices(backbone_cfg)]


def _first(cfg: Any) -> Optional[Mapping[str, Any]]:
    if isinstance(cfg, Sequence) and not isinstance(cfg, str):
        return cfg[0] if cfg else None
    return cfg


def check_neck_in_channels(model_cfg: Mapping[str, Any]) -> None:
    """Refuse a model config whose neck (or, without a neck, whose decode and
    auxiliary heads) expect other widths than its InternImage (or
    CBInternImage) backbone gives.

    Configs with another backbone type, or whose consumer does not state
    ``in_channels``, pass unchecked.

    Args:
        model_cfg: the ``model`` config of a detector or segmentor.

    Raises:
        ValueError: naming the consumer's ``in_channels`` and the backbone's
            widths.
    """
    backbone = model_cfg.get('backbone')
    if not backbone or backbone.get('type') not in BACKBONE_TYPES:
        return
    widths = backbone_out_channels(backbone)
    neck = _first(model_cfg.get('neck'))
    if neck is not None:
        if 'in_channels' in neck and list(neck['in_channels']) != widths:
            raise ValueError(
                f"model.neck ({neck.get('type')}) in_channels={list(neck['in_channels'])} "
                f'does not match the backbone widths {widths} (its stages at out_indices '
                f'{backbone_out_indices(backbone)})')
        return
    for key in ('decode_head', 'auxiliary_head'):
        heads = model_cfg.get(key)
        for head in (heads if isinstance(heads, Sequence) else [heads]):
            if not head or 'in_channels' not in head:
                continue
            # a list of in_channels and no in_index (mmseg's Mask2FormerHead):
            # every stage the backbone gives
            default = (list(range(len(widths)))
                       if isinstance(head['in_channels'], Sequence) else -1)
            index = head.get('in_index', default)
            if isinstance(index, int):
                want: Any = widths[index]
                got: Any = head['in_channels']
            else:
                want = [widths[i] for i in index]
                got = list(head['in_channels'])
            if got != want:
                raise ValueError(
                    f"model.{key} ({head.get('type')}) in_channels={got} with "
                    f'in_index={index} does not match the backbone widths {widths} '
                    f'(selected: {want})')
