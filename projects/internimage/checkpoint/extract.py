"""A backbone checkpoint cut out of a detector's or a segmentor's checkpoint
(the body of ``tools/model_converters/extract_backbone.py``).

A trained model's checkpoint holds the whole model (``backbone.*``,
``neck.*``, ``decode_head.*`` ...), the optimizer state and the config text.
:func:`extract_backbone` keeps the backbone's weights only, without their
prefix, under ``state_dict``: a small file that a config loads as a
pretrained backbone (``init_cfg=dict(type='Pretrained', checkpoint=...)``),
as it loads the published classification checkpoints. The demo's pretrained
backbone (``demo/pretrained/``) is made this way.
"""
import argparse
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional

import torch

from .reader import check_finite, read_checkpoint
from .weights import find_weights, first_of, tensors

__all__ = ['backbone_weights', 'extract_backbone', 'main']

#: The facts of the source checkpoint's ``meta`` kept in the output's.
KEPT_META = ('epoch', 'iter', 'seed', 'experiment_name', 'mmengine_version')


def backbone_weights(weights: Mapping[str, Any], prefix: str = 'backbone.',
                     filename: str = '<checkpoint>') -> Dict[str, torch.Tensor]:
    """The tensors under ``prefix`` (a DDP ``module.`` before it is
    allowed), with the prefix removed.

    Args:
        weights: A model's ``state_dict``.
        prefix: The backbone's key prefix in the model.
        filename: Named in the error.

    Returns:
        dict[str, torch.Tensor]: The backbone's weights, in the model's order.

    Raises:
        ValueError: No key starts with ``prefix`` (the message names the
            file and the first keys it has).
    """
    if not prefix:
        raise ValueError('prefix must not be empty (e.g. "backbone.")')
    out: Dict[str, torch.Tensor] = {}
    for key, value in tensors(weights).items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if key.startswith(prefix):
            out[key[len(prefix):]] = value
    if not out:
        raise ValueError(f'{filename}: no weights start with {prefix!r}; its keys begin '
                         f'with: {first_of(sorted(weights), shown=5)}')
    return out


def extract_backbone(src: str, dst: str, prefix: str = 'backbone.') -> int:
    """Write the backbone weights of checkpoint ``src`` to ``dst``.

    ``src`` is read by the safe reader (:func:`.reader.read_checkpoint`: CRC
    check, weights-only unpickling first) and its weights are checked for
    NaN/inf. The output holds the backbone's weights (prefix removed, tensors
    copied, so nothing else of ``src`` is saved with them) under
    ``state_dict`` and, under ``meta``, ``src``'s file name and the
    :data:`KEPT_META` facts of its ``meta``; the optimizer state, the other
    modules and the config text are dropped.

    Args:
        src: A checkpoint of a detector or a segmentor (``tools/train.py``
            writes them).
        dst: The output file (its directory is created).
        prefix: The backbone's key prefix in the model.

    Returns:
        int: The number of tensors written.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` is damaged, not a dict, holds NaN/inf or has no
            key under ``prefix``; ``dst`` is ``src``.
    """
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError(f'the output must be another file than the input ({src})')
    checkpoint = read_checkpoint(src, map_location='cpu')
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{src}: a checkpoint must be a dict, got {type(checkpoint).__name__}')
    weights = find_weights(checkpoint)[1]
    backbone = backbone_weights(weights, prefix, src)
    check_finite(backbone, src)
    meta: Dict[str, Any] = dict(source=osp.basename(src), prefix=prefix)
    if isinstance(checkpoint.get('meta'), Mapping):
        meta.update({k: checkpoint['meta'][k] for k in KEPT_META if k in checkpoint['meta']})
    state_dict = {k: v.detach().clone().contiguous() for k, v in backbone.items()}
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    return len(state_dict)


def main(argv: Optional[List[str]] = None) -> None:
    """The command line ``IN OUT [--prefix P]``: :func:`extract_backbone`,
    then prints what it wrote, or exits with ``error:`` and the reason.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        description="Write the backbone weights of a detector's or a segmentor's checkpoint "
        'as a pretrained-backbone checkpoint')
    parser.add_argument('src', metavar='IN', help='checkpoint of the whole model (.pth)')
    parser.add_argument('dst', metavar='OUT', help='where to write the backbone checkpoint')
    parser.add_argument('--prefix', default='backbone.',
                        help="the backbone's key prefix in the model (default: backbone.)")
    args = parser.parse_args(argv)
    try:
        count = extract_backbone(args.src, args.dst, args.prefix)
    except (OSError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    print(f'wrote {count} backbone tensors ({osp.getsize(args.dst) / 2**20:.1f} MiB): '
          f'{args.src} -> {args.dst}')
