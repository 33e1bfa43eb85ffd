"""Convert a reference Mask2Former + InternImage checkpoint (mmseg 0.x, e.g.
``mask2former_internimage_h_896_80k_cocostuff2ade20k.pth``) to this
project's mmseg 1.x layout.

Every key is renamed by the rules of
``projects/internimage/converters/mask2former.py``; a key that no rule maps
stops the conversion with an error naming it. The checkpoint's ``meta`` is
kept; optimizer state is dropped.

The configs load reference files as they are too (``load_from``,
``tools/test.py CONFIG CKPT``); this script writes the converted file once.

Example::

    python tools/model_converters/internimage_mask2former_to_mmseg.py \\
        mask2former_internimage_h_896_80k_cocostuff2ade20k.pth \\
        mask2former_internimage_h_896_80k_cocostuff2ade20k_mmseg.pth
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='reference (mmseg 0.x) Mask2Former checkpoint')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    return parser.parse_args(argv)


def convert_file(src: str, dst: str) -> Dict[str, int]:
    """Convert ``src`` and save it as ``dst``; returns the number of keys.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` has no weights or is not in the reference layout.
        KeyError: a key of ``src`` has no counterpart (named in the message).
    """
    import torch
    from projects.internimage.converters.mask2former import (is_reference_mask2former,
                                                              mask2former_to_mmseg)
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src} does not exist')
    checkpoint = torch.load(src, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{src}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    weights = checkpoint.get('state_dict', checkpoint)
    if not isinstance(weights, dict) or not any(
            isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f'{src}: no weights found (neither under "state_dict" nor at the top '
                         'level)')
    if not is_reference_mask2former(weights):
        raise ValueError(f'{src} is not a reference Mask2Former checkpoint (no '
                         "'decode_head.*.layers.N.attentions' / 'ffns' keys); nothing to "
                         'convert')
    converted = mask2former_to_mmseg(weights)
    out = dict(state_dict=converted)
    if isinstance(checkpoint.get('meta'), dict):
        out['meta'] = checkpoint['meta']
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return dict(keys=len(converted))


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    result = convert_file(args.src, args.dst)
    print(f'converted {result["keys"]} keys: {args.src} -> {args.dst}')


if __name__ == '__main__':
    main()
