"""Write small deterministic synthetic datasets for the demo and the tests.

A COCO-format and an ADE20K-layout data set of coloured shapes; the body and
the layout: ``projects/internimage/apis/synthetic_data.py``.

Example::

    python tools/make_synthetic_data.py --out data/synthetic
"""
import argparse

from projects.internimage.apis.synthetic_data import generate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic')
    parser.add_argument('--size', type=int, default=128, help='image side')
    parser.add_argument('--coco-num', type=int, nargs=2, default=[200, 50],
                        metavar=('TRAIN', 'VAL'), help='0 0: no COCO-format set')
    parser.add_argument('--ade-num', type=int, nargs=2, default=[200, 50],
                        metavar=('TRAIN', 'VAL'), help='0 0: no ADE20K-layout set')
    parser.add_argument('--max-shapes', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        generate(args.out, args.coco_num, args.ade_num, args.size,
                 args.max_shapes, args.seed)
    except ValueError as err:
        raise SystemExit(f'error: {err}')
    print(f'synthetic COCO and ADE20K data written to {args.out}')


if __name__ == '__main__':
    main()
