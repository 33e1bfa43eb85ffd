"""The reference's DINO + CB-InternImage checkpoints, converted to this
project's ``CBDINO`` keys.

The reference's CB-DINO is its DINO (transformer under
``bbox_head.transformer``, mmcv 1.x layer names: see :mod:`.dino`) with a
composite backbone (``backbone.cb_modules.*``, ``backbone.cb_linears.*``:
the same names here) and its neck given as a one-element list, which
mmdet 2.x builds as an ``nn.Sequential``: ``neck.0.*``. This project's
config gives the neck as a dict: ``neck.*``.

Every key maps to exactly one key, tensors unchanged; a key of another
layout is a ``KeyError`` naming it.
"""
import re
from typing import Dict

import torch

from . import ReferenceFormat, StateDict, register_format
from .dino import COMPOSITE_BACKBONE, TRANSFORMER
from .dino import convert_key as convert_dino_key
from .dino import rename_keys, strip_ddp

#: The reference's neck: the first (only) module of a Sequential.
_NECK = re.compile(r'neck\.0\.(.+)')


def is_reference_cb_dino(state_dict: StateDict) -> bool:
    """Whether ``state_dict`` has the reference's CB-DINO layout: a
    transformer under ``bbox_head.transformer`` and a composite backbone
    (``backbone.cb_modules.*``)."""
    keys = [strip_ddp(key) for key in state_dict]
    return (any(key.startswith(TRANSFORMER) for key in keys)
            and any(key.startswith(COMPOSITE_BACKBONE) for key in keys))


def convert_key(key: str) -> str:
    """This project's name of one reference CB-DINO key (a leading DDP
    ``module.`` is dropped).

    Args:
        key: A key of a reference CB-DINO ``state_dict``.

    Raises:
        KeyError: ``key`` has no counterpart in ``CBDINO``.
    """
    name = strip_ddp(key)
    if name.startswith('neck.'):
        match = _NECK.fullmatch(name)
        if match is None:
            raise KeyError(f'reference CB-DINO checkpoint key {key!r} has no counterpart in '
                           "CBDINO: the reference's CB-DINO neck keys are 'neck.0.*'")
        return f'neck.{match.group(1)}'
    try:
        return convert_dino_key(name)
    except KeyError:
        raise KeyError(f'reference CB-DINO checkpoint key {key!r} has no counterpart in '
                       'CBDINO (not a DINO + CB-InternImage checkpoint of the reference?)'
                       ) from None


def convert_cb_dino(state_dict: StateDict) -> Dict[str, torch.Tensor]:
    """A reference CB-DINO ``state_dict`` with this project's ``CBDINO`` keys
    (:func:`.dino.rename_keys` by :func:`convert_key`).

    Args:
        state_dict: The reference checkpoint's ``state_dict``.

    Raises:
        KeyError: A key has no counterpart (named in the message), or two
            keys map to the same name.
    """
    return rename_keys(state_dict, convert_key, 'CB-DINO')


CB_DINO_FORMAT = register_format(ReferenceFormat(
    name='cb_dino', title='CB-DINO', signature=f"'{TRANSFORMER}*' and '{COMPOSITE_BACKBONE}*'",
    detect=is_reference_cb_dino, convert=convert_cb_dino))

__all__ = ['CB_DINO_FORMAT', 'convert_cb_dino', 'convert_key', 'is_reference_cb_dino']
