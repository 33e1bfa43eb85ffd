"""Data checks when a run starts: dropped annotations are reported, too many
stop the run, and sample errors name their files."""
import logging
from typing import Any, Optional

from mmengine.dataset import Compose
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop

from .checks import base_datasets, check_coco_annotations
from .report import DataReport
from .sample_errors import CheckedCompose

__all__ = ['DataCheckHook', 'DEFAULT_MAX_DROPPED']

#: Share of annotations (or images) a training set may lose before the run
#: stops.
DEFAULT_MAX_DROPPED = 0.05


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Report the data a run would silently lose or misread.

    - ``before_run``: every built data loader's pipeline becomes a
      :class:`.sample_errors.CheckedCompose` (errors name the file; label
      maps checked);
    - ``before_train``: the training set's annotation file is read again
      (COCO format) and the annotations mmdet drops are counted (invalid
      boxes, unknown categories) with the images left without any: a
      warning with the counts and the first files; above ``max_dropped``
      of the annotations or of the images, a ``ValueError`` naming them.

    In every config through ``configs/_base_/internimage_runtime.py``.

    Args:
        max_dropped: The largest share (0..1) of annotations or images that
            may be dropped (default 5%).
        shown: Files named per kind.
    """

    priority = 'VERY_HIGH'

    def __init__(self, max_dropped: float = DEFAULT_MAX_DROPPED, shown: int = 5) -> None:
        if isinstance(max_dropped, bool) or not isinstance(max_dropped, (int, float)) \
                or not 0 <= max_dropped <= 1:
            raise ValueError(f'DataCheckHook: max_dropped must be a share in [0, 1], '
                             f'got {max_dropped!r}')
        self.max_dropped = float(max_dropped)
        self.shown = shown

    # -- sample errors ------------------------------------------------------
    @staticmethod
    def _loaders(runner):
        for name in ('_train_loop', '_val_loop', '_test_loop'):
            loop = getattr(runner, name, None)
            if isinstance(loop, BaseLoop) and getattr(loop, 'dataloader', None) is not None:
                yield loop.dataloader

    def before_run(self, runner) -> None:
        """Wrap the pipelines of the built data loaders."""
        for loader in self._loaders(runner):
            for dataset in base_datasets(loader.dataset):
                pipeline = getattr(dataset, 'pipeline', None)
                if isinstance(pipeline, Compose) and not isinstance(pipeline, CheckedCompose):
                    dataset.pipeline = self.checked(dataset, pipeline)

    @staticmethod
    def checked(dataset: Any, pipeline: Any) -> CheckedCompose:
        """``pipeline`` as a :class:`.sample_errors.CheckedCompose`, with the
        label checks of a segmentation ``dataset``."""
        num_classes: Optional[int] = None
        if hasattr(dataset, 'ignore_index') and hasattr(dataset, 'reduce_zero_label'):
            num_classes = len(dataset.metainfo['classes'])
        return CheckedCompose(pipeline.transforms, num_classes,
                              getattr(dataset, 'ignore_index', 255))

    # -- dropped annotations -----------------------------------------------
    def before_train(self, runner) -> None:
        """Count what the training set drops; warn, or stop above the limit."""
        loop = getattr(runner, '_train_loop', None)
        if not isinstance(loop, BaseLoop):
            return
        report = DataReport('training set')
        for dataset in base_datasets(loop.dataloader.dataset):
            if hasattr(dataset, 'COCOAPI') and hasattr(dataset, 'ann_file'):
                check_coco_annotations(dataset, report)
        dropped = report.counts.get('dropped_annotations', 0)
        if not dropped:
            return
        anns, images = report.counts['annotations'], report.counts['images']
        left = len(report.problems.get('images left without annotations', []))
        text = (f'DataCheckHook: the training set drops {dropped} of its {anns} annotations '
                f'({dropped / anns:.1%}) and leaves {left} of its {images} images without '
                f'any ({left / max(images, 1):.1%}):\n{report.format(self.shown)}\n'
                '(tools/analysis/check_dataset.py CONFIG lists them all)')
        if dropped / anns > self.max_dropped or left / max(images, 1) > self.max_dropped:
            raise ValueError(f'{text}\nThat is more than max_dropped='
                             f'{self.max_dropped:g} allows: fix the annotations, or raise '
                             'DataCheckHook(max_dropped=...) in custom_hooks')
        print_log(text, logger='current', level=logging.WARNING)



