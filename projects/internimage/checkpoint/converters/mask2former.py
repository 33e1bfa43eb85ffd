"""The reference's Mask2Former checkpoints (mmseg 0.x) in mmseg 1.x's layout.

The published Mask2Former + InternImage models were trained with the
reference's own Mask2Former head, built on mmcv 1.x's generic transformer
layers; this project's configs use mmseg 1.x's ``Mask2FormerHead``, built on
mmdet 3.x's Mask2Former layers. The weights are the same tensors (same
shapes, same meaning); only the names of the transformer sub-modules differ:

================================================  ===========================
reference (mmcv 1.x ``BaseTransformerLayer``)       mmseg 1.x / mmdet 3.x
================================================  ===========================
``pixel_decoder.encoder.layers.N.attentions.0``     ``...layers.N.self_attn``
``pixel_decoder.encoder.layers.N.ffns.0``           ``...layers.N.ffn``
``transformer_decoder.layers.N.attentions.0``       ``...layers.N.cross_attn``
``transformer_decoder.layers.N.attentions.1``       ``...layers.N.self_attn``
``transformer_decoder.layers.N.ffns.0``             ``...layers.N.ffn``
================================================  ===========================

(mmcv 1.x numbers a layer's attentions in the order of its
``operation_order``: the decoder's is cross-attention, norm, self-attention,
norm, FFN, norm, so ``attentions.0`` is the cross-attention; the layer norms
``norms.0..2`` keep their names and order.) The backbone, the pixel
decoder's convolutions and embeddings, the decoder's ``post_norm`` and the
head's queries, level embedding, class and mask embeddings keep their names.

Every key must match one rule: any other key is a ``KeyError`` naming it.
"""
import re
from typing import Dict, List, Pattern, Tuple

import torch

from . import ReferenceFormat, StateDict, register_format

_PIX = 'decode_head.pixel_decoder.'
_DEC = 'decode_head.transformer_decoder.'
_WB = r'(?:weight|bias)'
_MSDA = rf'(?:sampling_offsets|attention_weights|value_proj|output_proj)\.{_WB}'
_MHA = r'attn\.(?:in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)'
_FFN = rf'layers\.(?:0\.0|1)\.{_WB}'

#: (reference name, this project's name, regex of the ``{p}`` part); ``{n}``
#: is a layer / level index. The same rule maps both ways.
RULES: Tuple[Tuple[str, str, str], ...] = (
    ('backbone.{p}', 'backbone.{p}', r'.+'),
    # pixel decoder: the deformable-attention encoder layers
    (_PIX + 'encoder.layers.{n}.attentions.0.{p}', _PIX + 'encoder.layers.{n}.self_attn.{p}',
     _MSDA),
    (_PIX + 'encoder.layers.{n}.ffns.0.{p}', _PIX + 'encoder.layers.{n}.ffn.{p}', _FFN),
    (_PIX + 'encoder.layers.{n}.norms.{p}', _PIX + 'encoder.layers.{n}.norms.{p}',
     rf'[01]\.{_WB}'),
    # pixel decoder: convolutions and the level encoding
    (_PIX + '{p}', _PIX + '{p}',
     rf'(?:(?:input_convs|lateral_convs|output_convs)\.\d+\.(?:conv|gn)\.{_WB}'
     rf'|mask_feature\.{_WB}|level_encoding\.weight)'),
    # transformer decoder: cross-attention first, then self-attention
    (_DEC + 'layers.{n}.attentions.0.{p}', _DEC + 'layers.{n}.cross_attn.{p}', _MHA),
    (_DEC + 'layers.{n}.attentions.1.{p}', _DEC + 'layers.{n}.self_attn.{p}', _MHA),
    (_DEC + 'layers.{n}.ffns.0.{p}', _DEC + 'layers.{n}.ffn.{p}', _FFN),
    (_DEC + 'layers.{n}.norms.{p}', _DEC + 'layers.{n}.norms.{p}', rf'[012]\.{_WB}'),
    (_DEC + 'post_norm.{p}', _DEC + 'post_norm.{p}', _WB),
    # head: queries, level embedding, class / mask embeddings, input projections
    ('decode_head.{p}', 'decode_head.{p}',
     rf'(?:(?:query_embed|query_feat|level_embed)\.weight|cls_embed\.{_WB}'
     rf'|mask_embed\.\d+\.{_WB}|decoder_input_projs\.\d+\.{_WB})'),
)


def _compile(template: str, part: str) -> Pattern:
    """The regex of a rule's name template, groups ``n`` and ``p``."""
    pattern = re.escape(template).replace(r'\{n\}', r'(?P<n>\d+)')
    return re.compile(pattern.replace(r'\{p\}', f'(?P<p>{part})') + r'\Z')


_TO_OURS: List[Tuple[Pattern, str]] = [(_compile(ref, part), ours) for ref, ours, part in RULES]
_TO_REFERENCE: List[Tuple[Pattern, str]] = [(_compile(ours, part), ref)
                                            for ref, ours, part in RULES]
#: Keys only the reference layout has (its mmcv 1.x layer containers).
_REFERENCE_ONLY = re.compile(r'^decode_head\.(?:pixel_decoder\.encoder|transformer_decoder)'
                             r'\.layers\.\d+\.(?:attentions|ffns)\.')


def _rename(key: str, rules: List[Tuple[Pattern, str]], layout: str) -> str:
    for pattern, template in rules:
        match = pattern.match(key)
        if match:
            return template.format(**match.groupdict())
    raise KeyError(f'Mask2Former checkpoint key {key!r} has no counterpart in the {layout} '
                   'layout (not a key of the Mask2Former + InternImage model)')


def _convert(state_dict: StateDict, rules: List[Tuple[Pattern, str]], layout: str
             ) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = _rename(key, rules, layout)
        if new in out:
            raise KeyError(f'Mask2Former checkpoint keys map twice to {new!r} (last: {key!r})')
        out[new] = value
    return out


def is_reference_mask2former(state_dict: StateDict) -> bool:
    """Whether ``state_dict`` has the reference's Mask2Former layer names."""
    return any(_REFERENCE_ONLY.match(key) for key in state_dict)


def mask2former_to_mmseg(state_dict: StateDict) -> Dict[str, torch.Tensor]:
    """A reference Mask2Former ``state_dict`` with mmseg 1.x's names.

    Args:
        state_dict: The reference's weights (``backbone.*``, ``decode_head.*``).

    Returns:
        The same tensors under this project's names, in the same order.

    Raises:
        KeyError: naming the first key that no rule maps.
    """
    return _convert(state_dict, _TO_OURS, 'mmseg 1.x')


def mmseg_to_mask2former(state_dict: StateDict) -> Dict[str, torch.Tensor]:
    """The inverse of :func:`mask2former_to_mmseg`: mmseg 1.x names to the
    reference's (for comparing with, or handing back to, the reference code).

    Args:
        state_dict: Weights of this project's Mask2Former + InternImage.

    Raises:
        KeyError: naming the first key that no rule maps.
    """
    return _convert(state_dict, _TO_REFERENCE, 'reference (mmseg 0.x)')


MASK2FORMER = register_format(ReferenceFormat(
    name='mask2former', title='Mask2Former',
    signature="'decode_head.*.layers.N.attentions' / 'ffns'",
    detect=is_reference_mask2former, convert=mask2former_to_mmseg))

__all__ = ['RULES', 'MASK2FORMER', 'is_reference_mask2former', 'mask2former_to_mmseg',
           'mmseg_to_mask2former']
