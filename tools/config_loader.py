"""Loading a config for the tools (a helper module of ``tools/``, not a script).

One set of tools serves detection (``default_scope='mmdet'``) and
segmentation (``default_scope='mmseg'``) configs. :func:`load_config` makes
the project importable, applies the project's fixes for the released
OpenMMLab stack (``projects.internimage.compat``, explicitly, before anything
is parsed or built), parses the config, merges ``--cfg-options``, settles the
work dir and registers the modules of the config's task package.

Scripts under ``tools/`` (and its sub-folders, after putting ``tools/`` on
``sys.path``) import it as ``from config_loader import load_config``.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
from typing import Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCOPES = ('mmdet', 'mmseg')

__all__ = [
    'REPO_ROOT', 'SCOPES', 'add_repo_root_to_path', 'apply_compat',
    'load_config', 'scope_of', 'register_scope', 'set_local_rank'
]


def add_repo_root_to_path() -> None:
    """Make ``projects.internimage`` and ``ops_dcnv3`` importable from anywhere.

    Configs load ``custom_imports=['projects.internimage']`` while being
    parsed, so this must run before ``Config.fromfile``. Child processes
    (dataloader workers, spawned ranks) inherit it through ``PYTHONPATH``.
    """
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    paths = os.environ.get('PYTHONPATH', '').split(os.pathsep)
    if REPO_ROOT not in paths:
        os.environ['PYTHONPATH'] = os.pathsep.join([REPO_ROOT] + [
            p for p in paths if p])


def apply_compat() -> None:
    """Apply the project's fixes for the released OpenMMLab stack on current
    PyTorch and setuptools (``projects.internimage.compat.apply()``).

    The tools call it before they parse or build anything: checkpoint loading
    (``weights_only``) and ``mmdet::``/``mmseg::`` base configs depend on it.
    """
    add_repo_root_to_path()
    from projects.internimage import compat
    compat.apply()


def set_local_rank(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local-rank`` only.

    Args:
        local_rank (int): The value of the ``--local-rank`` argument.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none'):
    """Load ``config``, merge ``--cfg-options`` and settle the work dir.

    Args:
        config (str): Path of the config file.
        cfg_options (dict, optional): ``--cfg-options`` key/value pairs.
        work_dir (str, optional): The work dir. By priority: this argument,
            the config's own ``work_dir``, then ``./work_dirs/<config name>``.
        launcher (str): The job launcher (``'none'``, ``'pytorch'``,
            ``'slurm'`` or ``'mpi'``), stored as ``cfg.launcher``.

    Returns:
        mmengine.Config: The config, with its task scope's modules registered.

    Raises:
        FileNotFoundError: If ``config`` does not exist.
        ValueError: If the config's ``default_scope`` is not mmdet or mmseg.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    apply_compat()
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    register_scope(cfg)
    return cfg


def scope_of(cfg) -> str:
    """The task scope of a config.

    Args:
        cfg (mmengine.Config): A loaded config.

    Returns:
        str: ``'mmdet'`` or ``'mmseg'``.

    Raises:
        ValueError: If ``default_scope`` is anything else.
    """
    scope = cfg.get('default_scope', None)
    if scope not in SCOPES:
        raise ValueError(f'config default_scope must be one of {SCOPES}, '
                         f'got {scope!r}')
    return scope


def register_scope(cfg) -> None:
    """Register the modules of the config's task package and make it the
    default scope of the registries.

    Args:
        cfg (mmengine.Config): A loaded config.
    """
    if scope_of(cfg) == 'mmdet':
        from mmdet.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
