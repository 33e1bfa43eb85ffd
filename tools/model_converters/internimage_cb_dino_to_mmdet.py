"""Convert a reference (OpenGVLab/InternImage, mmdet 2.x) DINO +
CB-InternImage checkpoint to this project's mmdet 3.x ``CBDINO`` layout.

Usage::

    python tools/model_converters/internimage_cb_dino_to_mmdet.py IN OUT

Every key is mapped (``projects/internimage/converters/cb_dino.py``); a key
that does not map is an error naming it, and nothing is written. The output
keeps the input's ``meta`` and drops its optimizer state. The configs also
load reference files as they are (converted in memory). Plain DINO
checkpoints (T, L, H): ``internimage_dino_to_mmdet.py``.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a reference DINO + CB-InternImage checkpoint to mmdet 3.x keys')
    parser.add_argument('src', metavar='IN', help='reference CB-DINO checkpoint (.pth)')
    parser.add_argument('dst', metavar='OUT', help='where to write the converted checkpoint')
    return parser.parse_args(argv)


def convert_file(src: str, dst: str) -> int:
    """Convert ``src`` into ``dst``; returns the number of tensors.

    Args:
        src: A reference CB-DINO checkpoint file.
        dst: The output file (its directory is created).

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` is not a reference CB-DINO checkpoint.
        KeyError: A key of ``src`` does not map (named in the message).
    """
    import torch

    from projects.internimage.converters.cb_dino import convert_cb_dino, is_reference_cb_dino

    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src} does not exist')
    checkpoint = torch.load(src, map_location='cpu', weights_only=False)
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{src}: a checkpoint must be a dict, got {type(checkpoint).__name__}')
    weights = checkpoint.get('state_dict', checkpoint)
    if not isinstance(weights, dict) or not is_reference_cb_dino(weights):
        raise ValueError(f'{src} is not a reference CB-DINO checkpoint: it needs '
                         "'bbox_head.transformer.*' and 'backbone.cb_modules.*' keys "
                         '(already converted, or another model?)')
    out = {'state_dict': convert_cb_dino(weights)}
    if isinstance(checkpoint.get('meta'), dict):
        out['meta'] = checkpoint['meta']
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return len(out['state_dict'])


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    try:
        count = convert_file(args.src, args.dst)
    except (FileNotFoundError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise SystemExit(f'error: {message}')
    print(f'converted {count} tensors: {args.src} -> {args.dst}')


if __name__ == '__main__':
    main()
