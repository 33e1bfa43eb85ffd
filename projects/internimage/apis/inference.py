"""Drawing a detector's or a segmentor's predictions on images (the body of
``demo/image_demo.py``).

The mmdet / mmseg ``demo/image_demo.py`` convention, for both tasks (chosen
by the config's ``default_scope``), through mmdet's ``DetInferencer`` and
mmseg's ``MMSegInferencer``. The pictures are written to
``out_dir/vis/<image name>``, the raw predictions next to them, as the
inferencers write them (detection: ``out_dir/preds/<image stem>.json``,
segmentation: label maps ``out_dir/pred/<index>_pred.png``).
"""
import os
import os.path as osp
from typing import List

from .config import load_config, scope_of

__all__ = ['IMAGE_EXTS', 'list_images', 'draw_predictions']

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


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


def draw_predictions(img: str, config: str, weights: str, out_dir: str = 'outputs',
                     device: str = 'cpu', pred_score_thr: float = 0.3, opacity: float = 0.5,
                     show: bool = False) -> List[str]:
    """Draw the predictions of a config's model on images.

    Args:
        img (str): An image file or a folder of images.
        config (str): The model config file.
        weights (str): The checkpoint file of the model.
        out_dir (str): Pictures go to ``out_dir/vis``.
        device (str): Device for inference, e.g. ``cuda:0``.
        pred_score_thr (float): Detection: draw boxes scoring at least this.
        opacity (float): Segmentation: opacity of the painted label map, in
            (0, 1].
        show (bool): Show the pictures in a window.

    Returns:
        list[str]: The pictures written.

    Raises:
        FileNotFoundError: A missing image, folder, checkpoint or config.
        ValueError: ``opacity`` outside (0, 1].
    """
    images = list_images(img)
    if not osp.isfile(weights):
        raise FileNotFoundError(f'checkpoint not found: {weights}')
    if not 0 < opacity <= 1:
        raise ValueError(f'--opacity must be in (0, 1], got {opacity}')
    cfg = load_config(config)
    vis_dir = osp.join(out_dir, 'vis')
    if scope_of(cfg) == 'mmdet':
        from mmdet.apis import DetInferencer
        inferencer = DetInferencer(
            model=cfg, weights=weights, device=device, show_progress=False)
        inferencer(
            images,
            out_dir=out_dir,
            pred_score_thr=pred_score_thr,
            show=show,
            no_save_pred=False)
    else:
        from mmseg.apis import MMSegInferencer
        inferencer = MMSegInferencer(model=cfg, weights=weights, device=device)
        inferencer(images, out_dir=out_dir, show=show, opacity=opacity)
    written = [osp.join(vis_dir, osp.basename(p)) for p in images]
    missing = [p for p in written if not osp.isfile(p)]
    if missing:
        raise RuntimeError(f'the inferencer did not write {missing}')
    print(f'{len(written)} picture(s) of predictions in {vis_dir}')
    return written
