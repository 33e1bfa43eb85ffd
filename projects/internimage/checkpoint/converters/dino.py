"""The reference's DINO checkpoints, converted to mmdet 3.x ``DINO`` keys.

The reference trains DINO with its own OpenMMLab 1.x implementation: the
whole transformer sits under ``bbox_head.transformer`` and its layers use
mmcv 1.x's generic names (``attentions.0``, ``ffns.0``). mmdet 3.x's ``DINO``
keeps the transformer at the top level of the detector with named parts
(``self_attn``, ``cross_attn``, ``ffn``). The backbone, the neck and the
head's classification / regression branches keep their names.

Every key maps to exactly one key, tensors unchanged; a key of another
layout is a ``KeyError`` naming it (the layouts are checked down to the
parameter name, so nothing passes unnoticed).
"""
import re
from typing import Callable, Dict, Iterable, List, Tuple

import torch

from . import ReferenceFormat, StateDict, register_format

#: Where the reference keeps the transformer.
TRANSFORMER = 'bbox_head.transformer.'

_WB = r'(weight|bias)'
_DEFORM_ATTN = r'(sampling_offsets|attention_weights|value_proj|output_proj)\.' + _WB
_MHA = r'(attn\.in_proj_weight|attn\.in_proj_bias|attn\.out_proj\.' + _WB + ')'
_FFN = r'(layers\.0\.0\.' + _WB + r'|layers\.1\.' + _WB + ')'
_T = re.escape(TRANSFORMER)

#: ``(reference pattern, mmdet 3.x replacement)``, tried in order; a
#: pattern must match the whole key.
RULES: List[Tuple[str, str]] = [
    # unchanged parts
    (r'(backbone\..+)', r'\1'),
    (r'(neck\..+)', r'\1'),
    (r'bbox_head\.((cls|reg)_branches\.\d+\..+)', r'bbox_head.\1'),
    # denoising label embedding: head -> query generator
    (r'bbox_head\.label_embedding\.weight', r'dn_query_generator.label_embedding.weight'),
    # transformer-level parameters
    (_T + r'level_embeds', r'level_embed'),
    (_T + r'enc_output\.' + _WB, r'memory_trans_fc.\1'),
    (_T + r'enc_output_norm\.' + _WB, r'memory_trans_norm.\1'),
    (_T + r'query_embed\.weight', r'query_embedding.weight'),
    # encoder layers: deformable self-attention, FFN, norms
    (_T + r'encoder\.layers\.(\d+)\.attentions\.0\.' + _DEFORM_ATTN,
     r'encoder.layers.\1.self_attn.\2.\3'),
    # decoder layers: multi-head self-attention, deformable cross-attention
    (_T + r'decoder\.layers\.(\d+)\.attentions\.0\.' + _MHA, r'decoder.layers.\1.self_attn.\2'),
    (_T + r'decoder\.layers\.(\d+)\.attentions\.1\.' + _DEFORM_ATTN,
     r'decoder.layers.\1.cross_attn.\2.\3'),
    (_T + r'(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.' + _FFN, r'\1.layers.\2.ffn.\3'),
    (_T + r'(encoder|decoder)\.layers\.(\d+)\.norms\.(\d+)\.' + _WB, r'\1.layers.\2.norms.\3.\4'),
    # decoder: query-position MLP (Linear, ReLU, Linear -> MLP.layers[0, 1]), final norm
    (_T + r'decoder\.ref_point_head\.0\.' + _WB, r'decoder.ref_point_head.layers.0.\1'),
    (_T + r'decoder\.ref_point_head\.2\.' + _WB, r'decoder.ref_point_head.layers.1.\1'),
    (_T + r'decoder\.norm\.' + _WB, r'decoder.norm.\1'),
]
_COMPILED = [(re.compile(pattern), repl) for pattern, repl in RULES]


def strip_ddp(key: str) -> str:
    """``key`` without a leading DDP ``module.``."""
    return key[len('module.'):] if key.startswith('module.') else key


#: The composite backbone's keys: a reference CB-DINO checkpoint, the
#: ``cb_dino`` layout (:mod:`.cb_dino`), not this one.
COMPOSITE_BACKBONE = 'backbone.cb_modules.'


def is_reference_dino(state_dict: StateDict) -> bool:
    """Whether ``state_dict`` has the reference's DINO layout: a transformer
    under ``bbox_head.transformer`` (mmdet 3.x has none there), with a plain
    backbone (a composite one is the ``cb_dino`` layout)."""
    keys = [strip_ddp(key) for key in state_dict]
    return (any(key.startswith(TRANSFORMER) for key in keys)
            and not any(key.startswith(COMPOSITE_BACKBONE) for key in keys))


def convert_key(key: str) -> str:
    """The mmdet 3.x name of one reference DINO key (a leading DDP
    ``module.`` is dropped).

    Args:
        key: A key of a reference DINO ``state_dict``.

    Raises:
        KeyError: ``key`` has no counterpart in mmdet 3.x's DINO.
    """
    name = strip_ddp(key)
    for pattern, repl in _COMPILED:
        if pattern.fullmatch(name):
            return pattern.sub(repl, name)
    raise KeyError(f'reference DINO checkpoint key {key!r} has no counterpart in '
                   "mmdet 3.x's DINO (not a DINO-4scale checkpoint of the reference?)")


def rename_keys(state_dict: StateDict, convert: Callable[[str], str],
                title: str) -> Dict[str, torch.Tensor]:
    """``state_dict`` with every key renamed by ``convert``.

    Args:
        state_dict: The reference checkpoint's ``state_dict``.
        convert: The new name of one key; raises ``KeyError`` naming a key
            it cannot map.
        title: The layout's name in messages (``'DINO'``).

    Returns:
        A new dict, same tensors, the new keys, in the same order.

    Raises:
        KeyError: A key has no counterpart (named in the message), or two
            keys map to the same name.
    """
    converted: Dict[str, torch.Tensor] = {}
    source: Dict[str, str] = {}
    for key, value in state_dict.items():
        new = convert(key)
        if new in converted:
            raise KeyError(f'reference {title} checkpoint keys {source[new]!r} and {key!r} '
                           f'both map to {new!r}')
        converted[new] = value
        source[new] = key
    return converted


def convert_dino(state_dict: StateDict) -> Dict[str, torch.Tensor]:
    """A reference DINO ``state_dict`` with mmdet 3.x ``DINO`` keys
    (:func:`rename_keys` by :func:`convert_key`).

    Args:
        state_dict: The reference checkpoint's ``state_dict``.

    Raises:
        KeyError: A key has no counterpart (named in the message), or two
            keys map to the same name.
    """
    return rename_keys(state_dict, convert_key, 'DINO')


DINO_FORMAT = register_format(ReferenceFormat(
    name='dino', title='DINO', signature=f"'{TRANSFORMER}*'", detect=is_reference_dino,
    convert=convert_dino))

__all__ = ['COMPOSITE_BACKBONE', 'DINO_FORMAT', 'RULES', 'TRANSFORMER', 'convert_dino',
           'convert_key', 'is_reference_dino', 'rename_keys', 'strip_ddp']
