"""Errors while reading a sample name the file.

mmcv decodes a zero-byte JPEG into ``cv2.error ... !buf.empty()`` and a label
value beyond the classes fails in the loss as ``IndexError: Target 199 is
out of bounds``; neither names the file. :class:`CheckedCompose` runs a data
set's pipeline transform by transform and

- re-raises any error as a :class:`SampleLoadError` naming the sample's
  files and the transform;
- before mmseg's ``LoadAnnotations``, refuses a label map that is not 8-bit
  (mmseg would wrap a 16-bit PNG's values modulo 256);
- after it, refuses label values that are neither a class nor the ignore
  index.

:class:`.hook.DataCheckHook` puts it in place of every data loader's
pipeline when a run starts.
"""
from typing import Any, Dict, List, Optional

from mmengine.dataset import Compose

from .checks import LABEL_MODES, label_map_problems, read_label_map

__all__ = ['SampleLoadError', 'CheckedCompose', 'sample_files']


class SampleLoadError(RuntimeError):
    """A sample could not be read (the message names its files)."""


def sample_files(results: Dict[str, Any]) -> str:
    """The files of a sample, for messages."""
    files = [str(results[k]) for k in ('img_path', 'seg_map_path') if results.get(k)]
    return ', '.join(files) or f'sample {results.get("sample_idx", "?")}'


def _is_seg_load_annotations(transform: Any) -> bool:
    try:
        from mmseg.datasets.transforms import LoadAnnotations
    except ImportError:  # mmseg not installed: detection only
        return False
    return isinstance(transform, LoadAnnotations)


class CheckedCompose(Compose):
    """A pipeline whose errors name the sample's files (see the module
    docstring).

    Args:
        transforms: The transforms (or configs) of the pipeline.
        num_classes: Segmentation: the number of classes (None: no label
            checks).
        ignore_index: Segmentation: the ignored label value.
    """

    def __init__(self, transforms: List[Any], num_classes: Optional[int] = None,
                 ignore_index: int = 255) -> None:
        super().__init__(transforms)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def __call__(self, data: dict) -> Optional[dict]:
        """Run the transforms (see the class docstring).

        Args:
            data: The sample's information.

        Raises:
            SampleLoadError: A transform failed, or a label map is not
                8-bit or holds values outside the classes.
        """
        for transform in self.transforms:
            seg = _is_seg_load_annotations(transform) and self.num_classes is not None
            if seg:
                self._check_bit_depth(data, transform)
            try:
                data = transform(data)
            except SampleLoadError:
                raise
            except Exception as e:
                raise SampleLoadError(
                    f'{sample_files(data)}: {type(transform).__name__} failed: '
                    f'{type(e).__name__}: {e}') from e
            if data is None:
                return None
            if seg and data.get('gt_seg_map') is not None:
                why = label_map_problems(data['gt_seg_map'], self.num_classes,
                                         self.ignore_index)
                if why:
                    raise SampleLoadError(f'{data.get("seg_map_path")}: label map {why} '
                                          '(tools/analysis/check_dataset.py lists them all)')
        return data

    @staticmethod
    def _check_bit_depth(data: dict, transform: Any) -> None:
        path = data.get('seg_map_path')
        if path is None:
            return
        from mmengine import fileio
        try:
            values, mode = read_label_map(
                fileio.get(path, backend_args=getattr(transform, 'backend_args', None)))
        except Exception as e:
            raise SampleLoadError(f'{path}: the label map cannot be read: '
                                  f'{type(e).__name__}: {e}') from e
        if mode not in LABEL_MODES:
            raise SampleLoadError(
                f'{path}: the label map is PIL mode {mode} (dtype {values.dtype}); mmseg reads '
                '8-bit label maps and would wrap its values modulo 256')
