"""The synthetic data sets (projects/internimage/apis/synthetic_data.py) are
deterministic and consistent."""
import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from projects.internimage.apis.synthetic_data import CLASSES, SEG_CLASSES, generate


def _files(root: Path):
    return sorted(p.relative_to(root) for p in root.rglob('*') if p.is_file())


def test_deterministic(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    for out in (a, b):
        generate(str(out), coco_num=(3, 2), ade_num=(3, 2), size=64)
    assert _files(a) == _files(b)
    for rel in _files(a):
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def test_coco_annotations(synthetic_data):
    from pycocotools.coco import COCO
    root = synthetic_data / 'coco'
    for split, num in (('train', 4), ('val', 2)):
        ann_file = root / 'annotations' / f'instances_{split}2017.json'
        coco = COCO(str(ann_file))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
            CLASSES)
        assert len(coco.getImgIds()) == num
        for img in coco.loadImgs(coco.getImgIds()):
            path = root / f'{split}2017' / img['file_name']
            assert Image.open(path).size == (img['width'], img['height'])
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            assert anns, 'every image has at least one shape'
            for ann in anns:
                x, y, w, h = ann['bbox']
                assert 0 <= x and 0 <= y and w > 0 and h > 0
                assert x + w <= img['width'] and y + h <= img['height']
                # the polygon, rasterised by pycocotools, is the shape
                mask = coco.annToMask(ann)
                assert abs(mask.sum() - ann['area']) <= 0.15 * ann['area']
    json.loads((root / 'annotations' / 'instances_val2017.json').read_text())


def test_ade_layout(synthetic_data):
    root = synthetic_data / 'ade' / 'ADEChallengeData2016'
    for split, num in (('training', 4), ('validation', 2)):
        images = sorted((root / 'images' / split).glob('*.jpg'))
        labels = sorted((root / 'annotations' / split).glob('*.png'))
        assert len(images) == len(labels) == num
        assert [p.stem for p in images] == [p.stem for p in labels]
        for img, lab in zip(images, labels):
            label = np.array(Image.open(lab))
            assert label.shape == np.array(Image.open(img)).shape[:2]
            # 1 = background, 2.. = shapes (0, "other", is not used)
            assert set(np.unique(label)) <= set(range(1, len(SEG_CLASSES) + 1))
            assert (label > 1).any()


def _hue(rgb: np.ndarray) -> float:
    """The hue in [0, 1) of one RGB colour."""
    import colorsys
    return colorsys.rgb_to_hsv(*(rgb / 255.0))[0]


def test_scenes_are_few_large_separated_and_coloured_by_class():
    """What makes the demo's data learnable in minutes: at most max_shapes
    shapes, each SHAPE_SIZE of the image side wide, boxes SHAPE_GAP apart,
    every kind in its own colour (hue within HUE_JITTER of HUES, read back
    from the pixels), on a background of other colours."""
    from projects.internimage.apis.synthetic_data import (HUE_JITTER, HUES, SHAPE_GAP,
                                                          SHAPE_SIZE, make_scene)
    rng = np.random.RandomState(0)
    side, counts, kinds = 128, [], set()
    for _ in range(40):
        img, shapes = make_scene(rng, side, side, max_shapes=3)
        counts.append(len(shapes))
        boxes = []
        for s in shapes:
            kinds.add(s['kind'])
            lo, hi = s['poly'].min(0), s['poly'].max(0)
            # the width of the widest part: the shape's size (a triangle's
            # side is sqrt(3)/2 of it, a rotated one at least that)
            assert SHAPE_SIZE[0] * side * 0.85 <= (hi - lo).max() <= SHAPE_SIZE[1] * side * 1.45
            mean = img[s['mask']].astype(float).mean(0)
            diff = (_hue(mean) - HUES[s['kind']] + 0.5) % 1.0 - 0.5
            assert abs(diff) <= HUE_JITTER + 0.02, (s['kind'], _hue(mean))
            boxes.append((*lo, *hi))
        for i, a in enumerate(boxes):
            for b in boxes[:i]:
                gap = max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])
                assert gap >= SHAPE_GAP * side - 1e-6
    assert kinds == set(CLASSES)
    assert 1 <= min(counts) and max(counts) == 3


def test_one_layout_only_and_bad_arguments(tmp_path):
    generate(str(tmp_path / 'ade_only'), coco_num=(0, 0), ade_num=(2, 1), size=64)
    assert not (tmp_path / 'ade_only' / 'coco').exists()
    assert len(list((tmp_path / 'ade_only').rglob('*.png'))) == 3
    for kwargs, match in ((dict(coco_num=(-1, 2)), r'coco_num must be two image counts >= 0'),
                          (dict(ade_num=(1,)), r'ade_num must be two image counts'),
                          (dict(size=16), 'size must be at least 32'),
                          (dict(max_shapes=0), 'max_shapes must be at least 1')):
        with pytest.raises(ValueError, match=match):
            generate(str(tmp_path / 'bad'), **kwargs)
