"""Estimate, without a GPU, the peak GPU memory of one training step of the
DINO-H / DINO + CB-InternImage-H configs at their published batch (one image
per GPU), activation checkpointing on.

Run from the repository root::

    python benchmarks/estimate_train_memory.py
    python benchmarks/estimate_train_memory.py \\
        --config configs/coco/dino_4scale_internimage_h_objects365_coco_ss.py

What is counted, and how: ``projects/internimage/apis/train_memory.py``.
``--check`` also counts a small backbone's saved tensors on real tensors and
on FakeTensors (they must be equal).
"""
import argparse
from typing import List, Optional

from projects.internimage.apis.config import load_config
from projects.internimage.apis.train_memory import (TrainMemory, backbone_activations,
                                                    estimate_train_memory)

GIB = 2.0**30
DEFAULT_CONFIG = 'configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ss.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--shape', type=int, nargs=2, default=(1824, 2016), metavar=('H', 'W'),
                        help='padded training image (default: the largest of the recipe, '
                        '1800 x 2000 padded to a multiple of 32)')
    parser.add_argument('--num-gt', type=int, default=20,
                        help='boxes per image (sets the denoising queries: 2 x 1000 at most)')
    parser.add_argument('--fit-sizes', type=int, nargs='+', default=(320, 384, 448),
                        help='image heights of the neck/transformer fit (width in the '
                        "ratio of --shape)")
    parser.add_argument('--check', action='store_true',
                        help='also check FakeTensor counting against real tensors')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> TrainMemory:
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.check:
        small = dict(cfg.model.backbone, channels=32, depths=[2, 2, 6, 2],
                     groups=[2, 4, 8, 16], level2_post_norm_block_ids=[1, 3, 5])
        real = backbone_activations(small, 256, 320, fake=False)
        fake = backbone_activations(small, 256, 320, fake=True)
        print(f'check: saved bytes, real tensors {real}, FakeTensors {fake}: '
              f'{"equal" if real == fake else "DIFFERENT"}')
    est = estimate_train_memory(cfg, args.shape, args.num_gt, args.fit_sizes)
    (h, w), (a, b, fit_err) = est.shape, est.head_fit
    print(f'config: {args.config}\n{est.params / 1e9:.4f}B parameters; image {h}x{w} '
          f'(padded), 1 per GPU, {args.num_gt} boxes\n')
    for name, value in est.parts:
        print(f'{name:<72} {value / GIB:8.2f} GiB')
    print(f'(neck/transformer: {a / GIB:.2f} GiB + {b * 1e6 / GIB:.3f} GiB per million '
          f'pixels, fit on {len(args.fit_sizes)} sizes, max rel. residual {fit_err:.1e})\n')
    for name, value in est.phases:
        print(f'peak bound, {name:<60} {value / GIB:8.2f} GiB')
    print(f'{"estimated peak":<72} {est.peak / GIB:8.2f} GiB  ({est.peak / (80 * GIB):.0%} '
          'of an 80 GiB A100, before the CUDA context and fragmentation)')
    return est


if __name__ == '__main__':
    main()
