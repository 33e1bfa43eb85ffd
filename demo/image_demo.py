"""Draw a detector's or a segmentor's predictions on images.

The mmdet / mmseg ``demo/image_demo.py`` convention, for both tasks (chosen
by the config's ``default_scope``), through mmdet's ``DetInferencer`` and
mmseg's ``MMSegInferencer``::

    python demo/image_demo.py IMG CONFIG --weights CKPT --out-dir DIR

``IMG`` is an image file or a folder of images. The pictures are written to
``DIR/vis/<image name>``, the raw predictions next to them, as the
inferencers write them (detection: ``DIR/preds/<image stem>.json``,
segmentation: label maps ``DIR/pred/<index>_pred.png``). The body is
``projects.internimage.apis.inference.draw_predictions``.
"""
import argparse

from projects.internimage.apis.inference import draw_predictions


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw predictions of a detector or a segmentor')
    parser.add_argument('img', help='an image file or a folder of images')
    parser.add_argument('config', help='the model config file')
    parser.add_argument(
        '--weights', required=True, help='the checkpoint file of the model')
    parser.add_argument(
        '--out-dir',
        default='outputs',
        help='pictures go to OUT_DIR/vis (default: outputs)')
    parser.add_argument(
        '--device', default='cpu', help='device for inference, e.g. cuda:0')
    parser.add_argument(
        '--pred-score-thr',
        type=float,
        default=0.3,
        help='detection: draw boxes scoring at least this')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='segmentation: opacity of the painted label map, in (0, 1]')
    parser.add_argument(
        '--show', action='store_true', help='show the pictures in a window')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    draw_predictions(args.img, args.config, args.weights, out_dir=args.out_dir,
                     device=args.device, pred_score_thr=args.pred_score_thr,
                     opacity=args.opacity, show=args.show)


if __name__ == '__main__':
    main()
