"""Draw a detector's or a segmentor's predictions on images.

The mmdet / mmseg ``demo/image_demo.py`` convention, for both tasks (chosen
by the config's ``default_scope``), through mmdet's ``DetInferencer`` and
mmseg's ``MMSegInferencer``::

    python demo/image_demo.py IMG CONFIG --weights CKPT --out-dir DIR

``IMG`` is an image file or a folder of images. The pictures are written to
``DIR/vis/<image name>``, the raw predictions next to them, as the
inferencers write them (detection: ``DIR/preds/<image stem>.json``,
segmentation: label maps ``DIR/pred/<index>_pred.png``).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')
sys.path.insert(0, TOOLS)
import config_loader  # noqa: E402

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
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
    return parser.parse_args(argv)


def list_images(img: str) -> List[str]:
    """The image files ``img`` names: itself, or the images in the folder.

    Args:
        img (str): An image file or a folder.

    Returns:
        list[str]: Image paths, sorted.

    Raises:
        FileNotFoundError: If ``img`` does not exist or the folder holds no
            image.
    """
    if osp.isfile(img):
        return [img]
    if not osp.isdir(img):
        raise FileNotFoundError(f'image or folder not found: {img}')
    files = sorted(
        osp.join(img, name) for name in os.listdir(img)
        if name.lower().endswith(IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(
            f'no image ({", ".join(IMAGE_EXTS)}) in the folder {img}')
    return files


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Run the demo.

    Args:
        argv (list[str], optional): Command-line arguments (default:
            ``sys.argv[1:]``).

    Returns:
        list[str]: The pictures written.
    """
    args = parse_args(argv)
    images = list_images(args.img)
    if not osp.isfile(args.weights):
        raise FileNotFoundError(f'checkpoint not found: {args.weights}')
    if not 0 < args.opacity <= 1:
        raise ValueError(f'--opacity must be in (0, 1], got {args.opacity}')
    cfg = config_loader.load_config(args.config)
    vis_dir = osp.join(args.out_dir, 'vis')
    if config_loader.scope_of(cfg) == 'mmdet':
        from mmdet.apis import DetInferencer
        inferencer = DetInferencer(
            model=cfg, weights=args.weights, device=args.device,
            show_progress=False)
        inferencer(
            images,
            out_dir=args.out_dir,
            pred_score_thr=args.pred_score_thr,
            show=args.show,
            no_save_pred=False)
    else:
        from mmseg.apis import MMSegInferencer
        inferencer = MMSegInferencer(
            model=cfg, weights=args.weights, device=args.device)
        inferencer(
            images,
            out_dir=args.out_dir,
            show=args.show,
            opacity=args.opacity)
    written = [osp.join(vis_dir, osp.basename(p)) for p in images]
    missing = [p for p in written if not osp.isfile(p)]
    if missing:
        raise RuntimeError(f'the inferencer did not write {missing}')
    print(f'{len(written)} picture(s) of predictions in {vis_dir}')
    return written


if __name__ == '__main__':
    main()
