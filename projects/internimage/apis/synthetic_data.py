"""Small deterministic synthetic datasets for the demo and the tests (the
body of ``tools/make_synthetic_data.py``).

Two datasets of coloured shapes (circles, rectangles, triangles, crosses) on
textured backgrounds, generated from a seed so that every run writes the same
files:

* COCO instance format under ``<out>/coco/``: ``annotations/instances_{train,
  val}2017.json`` (polygon masks, boxes, one category per shape kind) and the
  images in ``train2017/`` and ``val2017/``.
* ADE20K layout under ``<out>/ade/ADEChallengeData2016/``: ``images/{training,
  validation}/*.jpg`` and ``annotations/{training,validation}/*.png`` label maps
  (0 = unlabelled, 1 = background, 2.. = the shape kinds, so that
  ``reduce_zero_label=True`` gives background 0 and shapes 1..).

Example::

    python tools/make_synthetic_data.py --out data/synthetic
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

CLASSES: Tuple[str, ...] = ('circle', 'rectangle', 'triangle', 'cross')
SEG_CLASSES: Tuple[str, ...] = ('background', ) + CLASSES
#: each shape kind has its own hue (red, green, blue, yellow), jittered by
#: at most HUE_JITTER, so that a small model trained for minutes can tell the
#: kinds apart; the shapes themselves still decide the boxes and masks
HUES: Dict[str, float] = dict(circle=0., rectangle=0.33, triangle=0.62,
                              cross=0.15)
HUE_JITTER = 0.03
#: shape widths, as fractions of the image side
SHAPE_SIZE = (0.3, 0.5)
#: the least gap between two shapes' boxes, as a fraction of the image side
SHAPE_GAP = 0.04


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (N, 2) points about the origin by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def shape_polygon(kind: str, cx: float, cy: float, size: float,
                  angle: float) -> np.ndarray:
    """Vertices (N, 2) in (x, y) of a shape of width about ``size``."""
    r = size / 2
    if kind == 'circle':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif kind == 'rectangle':
        pts = np.array([[-1, -0.6], [1, -0.6], [1, 0.6], [-1, 0.6]]) * r
    elif kind == 'triangle':
        t = np.array([-np.pi / 2, np.pi / 6, 5 * np.pi / 6])
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif kind == 'cross':
        a, b = 1.0, 0.33
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b],
                        [b, a], [-b, a], [-b, b], [-a, b], [-a, -b],
                        [-b, -b]]) * r
    else:
        raise ValueError(f'unknown shape {kind!r}')
    if kind != 'circle':
        pts = _rotate(pts, angle)
    return pts + np.array([cx, cy])


def rasterize(poly: np.ndarray, h: int, w: int) -> np.ndarray:
    """Boolean (h, w) mask of pixel centres inside ``poly`` (even-odd rule)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    inside = np.zeros((h, w), dtype=bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for xa, ya, xb, yb in zip(x0, y0, x1, y1):
        if ya == yb:
            continue
        crosses = (ya > ys) != (yb > ys)
        x_at = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (xs < x_at)
    return inside


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (all in [0, 1]) as RGB in [0, 255]."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
           (v, p, q)][i]
    return np.array(rgb) * 255


def background(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    """A textured, weakly coloured background: random waves plus noise."""
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    base = hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.3), rng.uniform(0.3, .7))
    img = np.tile(base, (h, w, 1))
    for _ in range(4):
        fx, fy = rng.uniform(-12, 12, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(5, 20)
        img += np.sin(2 * np.pi * (fx * xs + fy * ys) + phase)[..., None] * amp
    img += rng.normal(0, 6, size=img.shape)
    return img


def make_scene(rng: np.random.RandomState, h: int, w: int,
               max_shapes: int) -> Tuple[np.ndarray, List[Dict]]:
    """Draw up to ``max_shapes`` shapes on a background: widths
    :data:`SHAPE_SIZE` of the image side, boxes at least :data:`SHAPE_GAP`
    apart."""
    img = background(rng, h, w)
    shapes: List[Dict] = []
    boxes: List[Tuple[float, float, float, float]] = []
    n = rng.randint(1, max_shapes + 1)
    lo, hi = (f * min(h, w) for f in SHAPE_SIZE)
    gap = SHAPE_GAP * min(h, w)
    for _ in range(50):
        if len(shapes) == n:
            break
        size = rng.uniform(lo, hi)
        cx = rng.uniform(size / 2 + 1, w - size / 2 - 1)
        cy = rng.uniform(size / 2 + 1, h - size / 2 - 1)
        kind = CLASSES[rng.randint(len(CLASSES))]
        poly = shape_polygon(kind, cx, cy, size, rng.uniform(0, 2 * np.pi))
        x_min, y_min = poly.min(0)
        x_max, y_max = poly.max(0)
        box = (x_min - gap / 2, y_min - gap / 2, x_max + gap / 2,
               y_max + gap / 2)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3]
               and b[1] < box[3] for b in boxes):
            continue
        mask = rasterize(poly, h, w)
        if mask.sum() < 16:
            continue
        hue = (HUES[kind] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
        colour = hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0))
        img[mask] = colour + rng.normal(0, 4, size=(int(mask.sum()), 3))
        boxes.append(box)
        shapes.append(dict(kind=kind, poly=poly, mask=mask))
    return np.clip(img, 0, 255).astype(np.uint8), shapes


def write_coco(root: str, split: str, num: int, seed: int, size: int,
               max_shapes: int) -> None:
    """Write ``num`` images and ``instances_<split>2017.json`` under root."""
    rng = np.random.RandomState(seed)
    img_dir = osp.join(root, f'{split}2017')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for i in range(num):
        img, shapes = make_scene(rng, size, size, max_shapes)
        name = f'{i:06d}.jpg'
        Image.fromarray(img).save(osp.join(img_dir, name), quality=95)
        images.append(dict(id=i + 1, file_name=name, height=size, width=size))
        for s in shapes:
            poly = s['poly']
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=CLASSES.index(s['kind']) + 1,
                    segmentation=[[round(float(v), 2) for v in poly.ravel()]],
                    area=float(s['mask'].sum()),
                    bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0,
                                                       y1 - y0)],
                    iscrowd=0))
    categories = [
        dict(id=i + 1, name=c, supercategory='shape')
        for i, c in enumerate(CLASSES)
    ]
    with open(osp.join(root, 'annotations', f'instances_{split}2017.json'),
              'w') as f:
        json.dump(
            dict(images=images, annotations=annotations,
                 categories=categories), f)


def write_ade(root: str, split: str, num: int, seed: int, size: int,
              max_shapes: int) -> None:
    """Write ``num`` images and label maps in the ADE20K layout."""
    rng = np.random.RandomState(seed)
    img_dir = osp.join(root, 'images', split)
    ann_dir = osp.join(root, 'annotations', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for i in range(num):
        img, shapes = make_scene(rng, size, size, max_shapes)
        label = np.ones((size, size), dtype=np.uint8)  # 1 = background
        for s in shapes:
            label[s['mask']] = SEG_CLASSES.index(s['kind']) + 1
        name = f'ADE_{split}_{i:08d}'
        Image.fromarray(img).save(osp.join(img_dir, name + '.jpg'), quality=95)
        Image.fromarray(label).save(osp.join(ann_dir, name + '.png'))


def generate(out: str, coco_num: Sequence[int] = (200, 50),
             ade_num: Sequence[int] = (200, 50), size: int = 128,
             max_shapes: int = 3, seed: int = 0) -> None:
    """Generate both datasets under ``out``.

    Each split has its own seed (COCO train/val: ``seed``, ``seed + 1``;
    ADE20K training/validation: ``seed + 100``, ``seed + 101``): the splits
    of two data sets whose seeds differ by more than 101 are drawn from
    different seeds.

    Args:
        out: The output folder.
        coco_num: (train, val) image counts of the COCO-format set; (0, 0)
            writes no COCO-format set.
        ade_num: (train, val) image counts of the ADE20K-layout set; (0, 0)
            writes no ADE20K-layout set.
        size: The image side in pixels.
        max_shapes: The most shapes an image holds.
        seed: The seed of the first split (the others follow from it).

    Raises:
        ValueError: A negative image count, a size under 32 or
            ``max_shapes`` under 1.
    """
    for name, value in (('coco_num', coco_num), ('ade_num', ade_num)):
        if len(value) != 2 or min(value) < 0:
            raise ValueError(f'{name} must be two image counts >= 0, got {list(value)}')
    if size < 32:
        raise ValueError(f'size must be at least 32 pixels, got {size}')
    if max_shapes < 1:
        raise ValueError(f'max_shapes must be at least 1, got {max_shapes}')
    coco_root = osp.join(out, 'coco')
    ade_root = osp.join(out, 'ade', 'ADEChallengeData2016')
    if any(coco_num):
        for k, (split, n) in enumerate(zip(('train', 'val'), coco_num)):
            write_coco(coco_root, split, n, seed + k, size, max_shapes)
    if any(ade_num):
        for k, (split, n) in enumerate(zip(('training', 'validation'), ade_num)):
            write_ade(ade_root, split, n, seed + 100 + k, size, max_shapes)
