"""Export an InternImage segmentor or detector to ONNX and check it in onnxruntime.

Segmentors are exported end to end (preprocessed image in, logits out),
detectors as backbone + neck (feature maps out); DCNv3 in the portable form
(standard ONNX ops) or, with ``--plugin``, as ``mmdeploy::TRTDCNv3`` nodes for
TensorRT (then only checked with the ONNX checker). The details and the body:
``projects/internimage/apis/onnx_export.py``.

After exporting, the tool runs the file in onnxruntime on a random image
(``--image`` for a real one) and prints the largest difference to PyTorch;
with ``--dynamic`` also at a second batch size and image size. It exits
with status 1 when the largest difference, relative to the largest logit /
feature, is above ``--tolerance``.

Example::

    python tools/deployment/export_onnx.py \\
        configs/ade20k/upernet_internimage_t_512_160k_ade20k.py \\
        upernet_t.pth --shape 512 512 upernet_t.onnx
    # largest difference |onnxruntime - PyTorch|: 2.3e-05 (relative 1.1e-06)

``CHECKPOINT`` may be ``none`` for random weights (a trial export).
"""
import argparse
import sys

from mmengine.config import DictAction

from projects.internimage.apis.onnx_export import TOLERANCE, export_onnx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a segmentor (end to end) or a detector (backbone '
        '+ neck) to ONNX and check it with onnxruntime')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint',
                        help="checkpoint file, or 'none' for random weights")
    parser.add_argument('out', help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, required=True,
                        metavar=('H', 'W'), help='input image height and width')
    parser.add_argument('--plugin', action='store_true',
                        help='DCNv3 as mmdeploy::TRTDCNv3 nodes (TensorRT '
                        'plugin) instead of standard ONNX ops')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch size, height and width')
    parser.add_argument('--image', help='image to check with (default: random)')
    parser.add_argument('--tolerance', type=float, default=TOLERANCE,
                        help='largest accepted max|diff| / max|PyTorch| '
                        f'(default {TOLERANCE})')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random weights and image')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    result = export_onnx(args.config, args.checkpoint, args.out, args.shape,
                         plugin=args.plugin, dynamic=args.dynamic, image=args.image,
                         seed=args.seed, cfg_options=args.cfg_options)
    if result and result['max_rel'] > args.tolerance:
        print(f'FAILED: relative difference {result["max_rel"]:.3g} > '
              f'--tolerance {args.tolerance:g}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
