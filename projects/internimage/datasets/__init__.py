"""Data checks: a data set's annotations, images and label maps checked
before they train silently wrong (:mod:`.checks`, the command line
``tools/analysis/check_dataset.py``), sample errors that name the file
(:mod:`.sample_errors`) and the run-time hook of every config
(:class:`DataCheckHook`)."""
from .checks import build_split_dataset, check_dataset
from .hook import DEFAULT_MAX_DROPPED, DataCheckHook
from .report import DataReport
from .sample_errors import CheckedCompose, SampleLoadError

__all__ = ['build_split_dataset', 'check_dataset', 'DataCheckHook', 'DEFAULT_MAX_DROPPED',
           'DataReport', 'CheckedCompose', 'SampleLoadError']
