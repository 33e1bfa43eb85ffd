"""Loading a config for the tools.

One set of tools serves detection (``default_scope='mmdet'``) and
segmentation (``default_scope='mmseg'``) configs. :func:`load_config`
applies the project's fixes for the released OpenMMLab stack
(``projects.internimage.compat``, explicitly, before anything is parsed or
built), parses the config, merges ``--cfg-options``, trusts the checkpoint
files listed under ``trusted_checkpoints`` (see
``projects.internimage.checkpoint.reader``), settles the work dir and
registers the modules of the config's task package.
"""
import os
import os.path as osp
from typing import Any, Dict, Optional

__all__ = ['SCOPES', 'load_config', 'scope_of', 'register_scope', 'set_local_rank',
           'check_cfg_options']

#: The task scopes a config may have.
SCOPES = ('mmdet', 'mmseg')


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

    The project's fixes for the released OpenMMLab stack on current PyTorch
    and setuptools (``compat.apply()``) are applied first: checkpoint
    loading (``weights_only``) and ``mmdet::``/``mmseg::`` base configs
    depend on them.

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
    from .. import compat
    compat.apply()
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    # checkpoints the user declared trusted (loaded with the full unpickler)
    from ..checkpoint.reader import TRUST_CFG_KEY, trust_checkpoints
    trust_checkpoints(cfg.get(TRUST_CFG_KEY, None))
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    register_scope(cfg)
    return cfg


_MISSING = object()


def _lookup(cfg: Any, key: str) -> Any:
    """The value at a dotted ``--cfg-options`` key (list indices allowed),
    or ``_MISSING``."""
    node = cfg
    for part in key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif hasattr(node, 'get') and not isinstance(node, (list, tuple)):
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
        else:
            return _MISSING
    return node


def _kind(value: Any) -> str:
    return 'a bool' if isinstance(value, bool) else \
        'an int' if isinstance(value, int) else 'a number'


def check_cfg_options(cfg: Any, options: Dict[str, Any]) -> None:
    """Refuse ``--cfg-options`` values that do not convert to the type the
    config has at their key (a number, a bool), naming the key.

    ``DictAction`` turns ``key=value`` into an int, float, bool, string or a
    list/tuple of those; a typo (``max_epochs=1O``) stays a string and used
    to fail much later without naming the key. Keys the config does not
    have, or has as None, take any value.

    Args:
        cfg (mmengine.Config): The config before the options are merged.
        options (dict): The parsed options.

    Raises:
        ValueError: Naming the first key whose value does not fit.
    """
    for key, value in options.items():
        old = _lookup(cfg, key)
        if old is _MISSING or old is None:
            continue
        if isinstance(old, bool):
            fits = isinstance(value, bool)
        elif isinstance(old, int):
            fits = isinstance(value, int) and not isinstance(value, bool) or (
                isinstance(value, float) and value.is_integer())
        elif isinstance(old, float):
            fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            continue
        if not fits:
            raise ValueError(
                f'--cfg-options {key}={value!r}: the config has {_kind(old)} there ({old!r}), '
                f'and {value!r} does not convert to one')


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
