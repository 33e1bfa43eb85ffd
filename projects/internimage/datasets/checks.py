"""Checking a data set before it trains silently wrong.

mmdet's ``CocoDataset`` drops, without a word, annotations whose box is NaN,
smaller than a pixel or outside the image, and annotations of categories
outside the config's classes; a set where every box is NaN trains to
``loss_bbox`` 0. mmseg reads label maps as 8 bits: a 16-bit PNG's value 257
becomes 1, and a value beyond the classes fails in the loss (``Target 199 is
out of bounds``), naming no file.

:func:`check_dataset` reads a config's data set the way the data set reads
it (its annotation file, image prefix, classes, file backend, label-map
settings) and returns a :class:`.report.DataReport` naming the files:

- detection (COCO format): unreadable or empty images, images whose size
  differs from the annotation's, invalid boxes (NaN/inf, under a pixel,
  area <= 0, outside the image), unknown categories, images left without
  annotations by those; background images (no annotations at all) are a
  note;
- segmentation: unreadable or empty images, missing or unreadable label
  maps, label maps of another bit depth (16-bit, RGB), of another size than
  the image, or with values outside the classes (after
  ``reduce_zero_label`` / ``label_map``, the ignore index allowed).

``tools/analysis/check_dataset.py`` is the command line;
:class:`.hook.DataCheckHook` runs the annotation part when training starts.
"""
import io
import math
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .report import DataReport

__all__ = ['check_dataset', 'build_split_dataset', 'base_datasets', 'check_coco_annotations',
           'label_map_problems', 'read_label_map', 'LABEL_MODES', 'PROGRESS_MIN']

#: PIL modes of label maps that mmseg reads as they are (8-bit gray, palette,
#: 1-bit).
LABEL_MODES = ('L', 'P', '1')
#: Sets of at least this many items get a progress bar.
PROGRESS_MIN = 100


def base_datasets(dataset: Any) -> List[Any]:
    """The data sets inside mmengine's wrappers (Repeat, ClassBalanced,
    Concat), or ``[dataset]``.

    Args:
        dataset: A built data set.
    """
    if hasattr(dataset, 'datasets'):
        return [d for inner in dataset.datasets for d in base_datasets(inner)]
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'data_list'):
        return base_datasets(dataset.dataset)
    return [dataset]


def build_split_dataset(cfg, split: str = 'train') -> Any:
    """Build the data set of ``cfg``'s ``<split>_dataloader``.

    Args:
        cfg: A config loaded by :func:`..apis.config.load_config` (its task
            scope registered).
        split: ``'train'``, ``'val'`` or ``'test'``.

    Raises:
        KeyError: The config has no such data loader.
    """
    import copy

    from mmengine.registry import DATASETS
    key = f'{split}_dataloader'
    loader = cfg.get(key, None)
    if not loader or 'dataset' not in loader:
        raise KeyError(f'the config has no {key}.dataset')
    return DATASETS.build(copy.deepcopy(loader['dataset']))


def _progress(items: List[Any], enabled: bool) -> Iterable[Any]:
    if not enabled or len(items) < PROGRESS_MIN:
        yield from items
        return
    from mmengine.utils import ProgressBar
    bar = ProgressBar(len(items))
    for item in items:
        yield item
        bar.update()


def _read_bytes(path: str, backend_args: Optional[dict]) -> bytes:
    from mmengine import fileio
    return fileio.get(path, backend_args=backend_args)


def _image_shape(path: str, backend_args: Optional[dict], report: DataReport
                 ) -> Optional[Tuple[int, int]]:
    """(height, width) of a decodable image, else None with the problem
    recorded."""
    import mmcv
    try:
        data = _read_bytes(path, backend_args)
    except Exception as e:  # missing file, permissions, ...
        report.problem('unreadable images', f'{path}: {type(e).__name__}: {e}')
        return None
    if not data:
        report.problem('empty images', f'{path}: 0 bytes')
        return None
    try:
        img = mmcv.imfrombytes(data)
    except Exception as e:
        img, error = None, f'{type(e).__name__}: {e}'
    else:
        error = 'cannot be decoded'
    if img is None:
        report.problem('unreadable images', f'{path}: {error}')
        return None
    return img.shape[:2]


def _box_problem(bbox: Any, area: Any, width: float, height: float) -> Optional[str]:
    """Why mmdet's CocoDataset drops this box (its own tests: NaN/inf, then
    the size, then outside the image), or None."""
    try:
        x1, y1, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return f'bbox {bbox!r} is not 4 numbers'
    if not all(math.isfinite(v) for v in (x1, y1, w, h)):
        return f'bbox {bbox} is not finite'
    if w <= 0 or h <= 0:
        return f'bbox {bbox} has a non-positive size'
    if area is None or not math.isfinite(float(area)) or float(area) <= 0 or w < 1 or h < 1:
        return f'bbox {bbox} (area {area}) is under a pixel or has no area'
    inter_w = max(0.0, min(x1 + w, width) - max(x1, 0.0))
    inter_h = max(0.0, min(y1 + h, height) - max(y1, 0.0))
    if inter_w * inter_h == 0:
        return f'bbox {bbox} is outside the {width:g}x{height:g} image'
    return None


def check_coco_annotations(dataset: Any, report: DataReport, read_images: bool = False,
                           progress: bool = False) -> DataReport:
    """Check a COCO-format mmdet data set's annotation file (and images).

    Args:
        dataset: An mmdet ``CocoDataset`` (built with ``lazy_init=True`` or
            not: the annotation file is read again, as the data set reads it).
        report: Where the findings go.
        read_images: Also read every image (unreadable, empty, another size).
        progress: A progress bar on large sets.

    Returns:
        ``report``.
    """
    from mmengine.fileio import get_local_path
    with get_local_path(dataset.ann_file, backend_args=dataset.backend_args) as local:
        coco = dataset.COCOAPI(local)
    classes = dataset.metainfo['classes']
    cat_ids = set(coco.get_cat_ids(cat_names=classes))
    names = {c['id']: c.get('name') for c in coco.dataset.get('categories', [])}
    img_prefix = dataset.data_prefix.get('img', '') or ''
    img_ids = coco.get_img_ids()
    counts = dict(images=len(img_ids), annotations=0, dropped_annotations=0)
    for img_id in _progress(img_ids, progress):
        info = coco.load_imgs([img_id])[0]
        path = osp.join(img_prefix, info['file_name'])
        width, height = info.get('width'), info.get('height')
        if read_images:
            shape = _image_shape(path, dataset.backend_args, report)
            if shape is not None and (height, width) != shape:
                report.problem('images of another size than their annotation',
                               f'{path}: {shape[1]}x{shape[0]}, the annotation says '
                               f'{width}x{height}')
        anns = [a for a in coco.load_anns(coco.get_ann_ids(img_ids=[img_id]))
                if not a.get('ignore', False)]
        counts['annotations'] += len(anns)
        kept = 0
        for ann in anns:
            why = _box_problem(ann.get('bbox'), ann.get('area'), width, height)
            if why is not None:
                report.problem('invalid boxes', f'{path}: annotation {ann.get("id")}: {why}')
            elif ann.get('category_id') not in cat_ids:
                cat = ann.get('category_id')
                named = f' ({names[cat]!r})' if cat in names else ' (not in the categories)'
                report.problem('annotations of unknown categories',
                               f'{path}: annotation {ann.get("id")}: category_id {cat}{named} '
                               f'is not one of the {len(classes)} classes')
            else:
                kept += 1
        counts['dropped_annotations'] += len(anns) - kept
        if anns and not kept:
            report.problem('images left without annotations',
                           f'{path}: all {len(anns)} annotation(s) dropped')
        elif not anns:
            report.note('images without annotations (background; filter_empty_gt drops them '
                        'from training)', path)
    for key, value in counts.items():
        report.counts[key] = report.counts.get(key, 0) + value
    return report


def read_label_map(data: bytes) -> Tuple[np.ndarray, str]:
    """A label map's values as stored, and its PIL mode.

    Args:
        data: The file's bytes.
    """
    from PIL import Image
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img), img.mode


def label_map_problems(values: np.ndarray, num_classes: int, ignore_index: int = 255,
                       reduce_zero_label: bool = False,
                       label_map: Optional[Dict[int, int]] = None) -> Optional[str]:
    """The values of a label map (as mmseg uses them: after ``label_map``
    and ``reduce_zero_label``) that are neither a class nor the ignore
    index, or None.

    Args:
        values: The label map (8-bit values, as loaded).
        num_classes: Number of classes.
        ignore_index: The ignored value.
        reduce_zero_label: mmseg's option: 0 -> ignored, v -> v - 1.
        label_map: mmseg's ``label_map`` (old -> new id), applied first.
    """
    present = np.unique(values).astype(np.int64)
    if label_map:
        present = np.unique([label_map.get(int(v), int(v)) for v in present])
    if reduce_zero_label:
        present = np.where(present == 0, ignore_index, present - 1)
        present = np.where(present == ignore_index - 1, ignore_index, present)
    bad = sorted({int(v) for v in present if not (0 <= v < num_classes or v == ignore_index)})
    if not bad:
        return None
    shown = ', '.join(map(str, bad[:8])) + (' ...' if len(bad) > 8 else '')
    return (f'values {shown} are outside the {num_classes} classes '
            f'(0..{num_classes - 1}, {ignore_index} ignored)')


def check_seg_maps(dataset: Any, report: DataReport, progress: bool = False) -> DataReport:
    """Check every image and label map of an mmseg data set.

    Args:
        dataset: An mmseg ``BaseSegDataset``.
        report: Where the findings go.
        progress: A progress bar on large sets.

    Returns:
        ``report``.
    """
    dataset.full_init()
    num_classes = len(dataset.metainfo['classes'])
    ignore_index = getattr(dataset, 'ignore_index', 255)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    report.counts['images'] = report.counts.get('images', 0) + len(infos)
    report.counts.setdefault('label_maps', 0)
    for info in _progress(infos, progress):
        shape = _image_shape(info['img_path'], dataset.backend_args, report)
        seg = info.get('seg_map_path')
        if seg is None:
            continue
        report.counts['label_maps'] += 1
        try:
            values, mode = read_label_map(_read_bytes(seg, dataset.backend_args))
        except Exception as e:
            report.problem('missing or unreadable label maps', f'{seg}: {type(e).__name__}: {e}')
            continue
        if mode not in LABEL_MODES:
            report.problem('label maps of another bit depth',
                           f'{seg}: PIL mode {mode} (dtype {values.dtype}, max {values.max()}); '
                           'mmseg reads 8-bit label maps: values would wrap modulo 256')
            continue
        if shape is not None and values.shape[:2] != tuple(shape):
            report.problem('label maps of another size than their image',
                           f'{seg}: {values.shape[1]}x{values.shape[0]}, the image '
                           f'{info["img_path"]} is {shape[1]}x{shape[0]}')
        why = label_map_problems(values, num_classes, ignore_index,
                                 info.get('reduce_zero_label', False), info.get('label_map'))
        if why:
            report.problem('label maps with values outside the classes', f'{seg}: {why}')
    return report


def check_dataset(dataset: Any, name: str = 'dataset', read_images: bool = True,
                  progress: bool = True) -> DataReport:
    """Check every base data set of ``dataset`` (see the module docstring).

    Args:
        dataset: A built data set (mmengine wrappers are looked into).
        name: Names the report.
        read_images: Read every image (detection; segmentation always reads
            images and label maps).
        progress: A progress bar on large sets.

    Returns:
        The findings.

    Raises:
        TypeError: A data set that is neither COCO-format detection nor
            mmseg segmentation.
    """
    report = DataReport(name)
    for base in base_datasets(dataset):
        if hasattr(base, 'COCOAPI') and hasattr(base, 'ann_file'):
            check_coco_annotations(base, report, read_images, progress)
        elif hasattr(base, 'ignore_index') and hasattr(base, 'reduce_zero_label'):
            check_seg_maps(base, report, progress)
        else:
            raise TypeError(f'cannot check a {type(base).__name__}: only COCO-format '
                            'detection (mmdet CocoDataset) and mmseg segmentation data sets')
    return report
