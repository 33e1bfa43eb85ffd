"""Reference-format checkpoints, converted to this project's model keys.

The reference publishes some models (DINO, CB-DINO, Mask2Former) with its own
OpenMMLab 1.x implementations, whose ``state_dict`` keys differ from the
mmdet 3.x / mmseg 1.x models these configs build. Each such layout is a
:class:`ReferenceFormat`: a ``detect`` function that recognises it from the
keys alone, and a ``convert`` function that maps every key (an unmapped key
is a ``KeyError`` naming it).

Checkpoints trained with mmdet 2.x's EMA hook (the Cascade 3x models) also
hold ``ema_*`` copies of their weights (:mod:`.mmdet2_ema`). They are dropped
first, before the layout is detected, so that such a file matches one layout
(or none), whichever model it holds.

:func:`convert_checkpoint` is applied by the project's checkpoint loaders
(``load_from``, ``tools/test.py CONFIG CKPT``, ``init_cfg`` Pretrained), so a
reference file loads as it is; :func:`convert_file` (and :func:`main`, its
command line) is the body of the converter scripts under
``tools/model_converters/``, which write the converted file once.
"""
import argparse
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, MutableMapping, Optional, Tuple

import torch
from mmengine.logging import print_log

from ..weights import find_weights, tensors

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ReferenceFormat:
    """One reference checkpoint layout.

    Args:
        name: Short name, used in logs (e.g. ``'dino'``).
        title: The model's name in messages (e.g. ``'DINO'``).
        signature: The keys that identify the layout, for messages (e.g.
            ``"'bbox_head.transformer.*'"``).
        detect: Whether a ``state_dict`` is in this layout (keys only).
        convert: The ``state_dict`` with this project's keys; raises
            ``KeyError`` naming the first key it cannot map.
    """
    name: str
    title: str
    signature: str
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


def convert_weights(weights: StateDict, filename: str = '<checkpoint>'
                    ) -> Tuple[Optional[ReferenceFormat], StateDict]:
    """Drop mmdet 2.x EMA copies, then convert a reference layout.

    Args:
        weights: A checkpoint's weights (see :func:`..weights.find_weights`).
        filename: Named in the log lines.

    Returns:
        ``(format, weights)``: the layout detected (None: this project's
        own) and the weights in this project's layout (``weights`` itself
        when nothing changed).
    """
    kept = drop_ema_copies(weights)
    if len(kept) < len(weights):
        print_log(f'InternImage: {filename} holds {len(weights) - len(kept)} mmdet 2.x EMA '
                  "copies ('ema_*' keys, the raw training weights): dropped; the weights "
                  'under the usual names are the evaluated ones', logger='current')
    fmt = detect_format(kept)
    if fmt is None:
        return None, (kept if len(kept) < len(weights) else weights)
    converted = fmt.convert(kept)
    print_log(f'InternImage: {filename} is a reference {fmt.name} checkpoint: converted '
              f'{len(kept)} keys to {len(converted)} keys of this project\'s layout in '
              'memory', logger='current')
    return fmt, converted


def convert_checkpoint(checkpoint: MutableMapping, filename: str = '<checkpoint>'
                       ) -> MutableMapping:
    """Convert a loaded checkpoint in place when its weights hold EMA copies
    or are in a reference layout (:func:`convert_weights`). Other
    checkpoints are returned unchanged.

    Args:
        checkpoint: What ``torch.load`` returned (weights found by
            :func:`..weights.find_weights`).
        filename: Named in the log lines.
    """
    if not isinstance(checkpoint, MutableMapping):
        return checkpoint
    key, weights = find_weights(checkpoint)
    _, converted = convert_weights(weights, filename)
    if converted is weights:
        return checkpoint
    if key is None:
        return converted
    checkpoint[key] = converted
    return checkpoint


def convert_file(src: str, dst: str, name: str) -> int:
    """Convert a reference checkpoint file to this project's layout: the
    body of the converter scripts.

    ``src`` is read by the safe reader (:func:`..reader.read_checkpoint`:
    CRC check, weights-only unpickling first) and its weights are checked
    for NaN/inf; EMA copies are dropped; every key must map. The output
    holds the converted weights under ``state_dict`` and the input's
    ``meta``; optimizer state is dropped.

    Args:
        src: The reference checkpoint file.
        dst: The output file (its directory is created).
        name: The layout ``src`` must be in (a key of :data:`FORMATS`).

    Returns:
        The number of tensors written.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` is damaged, holds NaN/inf, is not in the layout
            ``name``, or a key does not map (named in the message).
    """
    from ..reader import check_finite, read_checkpoint
    if name not in FORMATS:
        raise ValueError(f'unknown reference format {name!r}; known: {sorted(FORMATS)}')
    fmt = FORMATS[name]
    checkpoint = read_checkpoint(src, map_location='cpu')
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{src}: a checkpoint must be a dict, got {type(checkpoint).__name__}')
    weights = find_weights(checkpoint)[1]
    check_finite(tensors(weights), src)
    try:
        found, converted = convert_weights(weights, src)
    except KeyError as err:
        raise ValueError(f'{src}: {err.args[0]}') from err
    if found is not fmt:
        raise ValueError(f'{src} is not a reference {fmt.title} checkpoint: it has no '
                         f'{fmt.signature} keys (already converted, or another model?)')
    out = {'state_dict': dict(converted)}
    if isinstance(checkpoint.get('meta'), dict):
        out['meta'] = checkpoint['meta']
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return len(converted)


def main(name: str, argv: Optional[List[str]] = None) -> None:
    """The command line ``IN OUT`` of the converter scripts: converts the
    reference file ``IN`` in the layout ``name`` into ``OUT``
    (:func:`convert_file`), prints what it wrote, or exits with ``error:``
    and the reason.

    Args:
        name: The layout (a key of :data:`FORMATS`).
        argv: The arguments (default: ``sys.argv[1:]``).
    """
    title = FORMATS[name].title
    parser = argparse.ArgumentParser(
        description=f"Convert a reference InternImage {title} checkpoint to this project's "
        'layout')
    parser.add_argument('src', metavar='IN', help=f'reference {title} checkpoint (.pth)')
    parser.add_argument('dst', metavar='OUT', help='where to write the converted checkpoint')
    args = parser.parse_args(argv)
    try:
        count = convert_file(args.src, args.dst, name)
    except (OSError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    print(f'converted {count} tensors: {args.src} -> {args.dst}')


# The layouts: each module registers its own (after the definitions above).
from . import cb_dino, dino, mask2former  # noqa: E402,F401
from .mmdet2_ema import drop_ema_copies  # noqa: E402

__all__ = ['ReferenceFormat', 'FORMATS', 'register_format', 'detect_format',
           'convert_weights', 'convert_checkpoint', 'convert_file', 'main']
