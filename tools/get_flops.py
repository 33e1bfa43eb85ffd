"""Count the FLOPs and parameters of a model the way the published tables do.

Every conv / linear / matmul / norm is counted by mmengine's standard
counter, and for each DCNv3 layer the sampling is added as ``5 * n * k * c``
(n output pixels, k sampling points, c channels), which the counter cannot
see inside the op; two-stage detectors are counted as mmdet 2's
``forward_dummy`` did. The rules and the body:
``projects/internimage/apis/flops.py``.

Example::

    python tools/get_flops.py configs/coco/mask_rcnn_internimage_t_fpn_1x_coco.py
    # Flops: 270.0G
    # Params: 48.9M
"""
import argparse

from mmengine.config import DictAction

from projects.internimage.apis.flops import get_flops


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Get a model\'s FLOPs')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar=('H', 'W'),
        help='input size H W (one value: square); default 800 1280 for '
        'detection, 512 2048 for segmentation')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    result = get_flops(args.config, args.shape, args.cfg_options)
    h, w = result['shape']
    split = '=' * 30
    print(f'{split}\nInput shape: (3, {h}, {w})\n'
          f'Flops: {result["flops"] / 1e9:.1f}G\n'
          f'  (counter {result["counter_flops"] / 1e9:.1f}G + DCNv3 sampling '
          f'{result["dcnv3_flops"] / 1e9:.2f}G)\n'
          f'Params: {result["params"] / 1e6:.1f}M\n{split}')


if __name__ == '__main__':
    main()
