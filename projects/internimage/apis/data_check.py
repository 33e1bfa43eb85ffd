"""``tools/analysis/check_dataset.py``: check a config's data set."""
from typing import Optional

from .config import load_config

__all__ = ['check_config_data']


def check_config_data(config: str, split: str = 'train', cfg_options: Optional[dict] = None,
                      progress: bool = True):
    """Read every image and annotation of a config's data set and report
    what would be dropped or misread (:mod:`..datasets.checks`).

    Args:
        config: The config file.
        split: ``'train'``, ``'val'`` or ``'test'``.
        cfg_options: ``--cfg-options`` (e.g. another ``data_root``).
        progress: Progress bar on large sets.

    Returns:
        projects.internimage.datasets.DataReport: The findings.
    """
    from ..datasets import build_split_dataset, check_dataset
    cfg = load_config(config, cfg_options)
    dataset = build_split_dataset(cfg, split)
    return check_dataset(dataset, name=f'{split} set of {config}', progress=progress)
