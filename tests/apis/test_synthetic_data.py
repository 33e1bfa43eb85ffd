"""The synthetic data sets (projects/internimage/apis/synthetic_data.py) are
deterministic and consistent."""
import filecmp
import json
from pathlib import Path

import numpy as np
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
