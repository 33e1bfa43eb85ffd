"""Reference-format checkpoints, converted to this project's model keys.

The reference publishes some models (DINO, Mask2Former) with its own
OpenMMLab 1.x implementations, whose ``state_dict`` keys differ from the
mmdet 3.x / mmseg 1.x models these configs build. Each such layout is a
:class:`ReferenceFormat`: a ``detect`` function that recognises it from the
keys alone, and a ``convert`` function that maps every key (an unmapped key
is a ``KeyError`` naming it).

:func:`convert_checkpoint` is applied by the project's checkpoint loaders
(``load_from``, ``tools/test.py CONFIG CKPT``, ``init_cfg`` Pretrained), so a
reference file loads as it is; the converter scripts under
``tools/model_converters/`` write the converted file once.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, MutableMapping, Optional

import torch
from mmengine.logging import print_log

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ReferenceFormat:
    """One reference checkpoint layout.

    Args:
        name: Short name, used in logs (e.g. ``'dino'``).
        detect: Whether a ``state_dict`` is in this layout (keys only).
        convert: The ``state_dict`` with this project's keys; raises
            ``KeyError`` naming the first key it cannot map.
    """
    name: str
    detect: Callable[[StateDict], bool]
    convert: Callable[[StateDict], Dict[str, torch.Tensor]]


#: The registered layouts, by name.
FORMATS: Dict[str, ReferenceFormat] = {}


def register_format(fmt: ReferenceFormat) -> ReferenceFormat:
    """Add ``fmt`` to :data:`FORMATS` (a second one of the same name is an error)."""
    if fmt.name in FORMATS and FORMATS[fmt.name] is not fmt:
        raise ValueError(f'reference checkpoint format {fmt.name!r} is already registered')
    FORMATS[fmt.name] = fmt
    return fmt


def detect_format(state_dict: StateDict) -> Optional[ReferenceFormat]:
    """The registered layout ``state_dict`` is in, or None (this project's own)."""
    found = [fmt for fmt in FORMATS.values() if fmt.detect(state_dict)]
    if len(found) > 1:
        raise ValueError('checkpoint matches several reference formats: '
                         f'{[fmt.name for fmt in found]}')
    return found[0] if found else None


def convert_checkpoint(checkpoint: MutableMapping, filename: str = '<checkpoint>'
                       ) -> MutableMapping:
    """Convert a loaded checkpoint in place when its weights are in a
    reference layout; log one line saying so. Other checkpoints are returned
    unchanged.

    Args:
        checkpoint: What ``torch.load`` returned: a dict with the weights
            under ``state_dict``, or the weights themselves.
        filename: Named in the log line.
    """
    if not isinstance(checkpoint, MutableMapping):
        return checkpoint
    nested = isinstance(checkpoint.get('state_dict'), Mapping)
    weights = checkpoint['state_dict'] if nested else checkpoint
    fmt = detect_format(weights)
    if fmt is None:
        return checkpoint
    converted = fmt.convert(weights)
    print_log(f'InternImage: {filename} is a reference {fmt.name} checkpoint: converted '
              f'{len(weights)} keys to {len(converted)} keys of this project\'s layout in '
              'memory', logger='current')
    if nested:
        checkpoint['state_dict'] = converted
        return checkpoint
    return converted


# The layouts: each module registers its own (after the definitions above).
from . import cb_dino, dino, mask2former, mmdet2_ema  # noqa: E402,F401

__all__ = ['ReferenceFormat', 'FORMATS', 'register_format', 'detect_format',
           'convert_checkpoint']
