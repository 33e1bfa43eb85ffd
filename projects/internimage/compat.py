"""Fixes for gaps of the released OpenMMLab 2.0 stack on current PyTorch and
setuptools. Importing this module applies them; each is idempotent.

1. ``torch.load`` defaults to ``weights_only=True`` since PyTorch 2.6, so
   mmengine's checkpoint loaders (which call ``torch.load(f, map_location)``)
   refuse the checkpoints mmengine itself writes (they pickle ``meta`` with
   message hubs, numpy scalars, config dicts) and resume fails. We re-register
   mmengine's local and HTTP(S) checkpoint schemes, through mmengine's own
   ``CheckpointLoader.register_scheme``, with loaders that pass
   ``weights_only=False``: checkpoints are trusted files, as they were when
   mmengine was written.
2. mmengine resolves ``mmdet::``/``mmseg::`` base configs with
   ``pkg_resources``, which setuptools 82 removed. Our requirements keep a
   setuptools that has it; when it is missing anyway, mmengine's package
   helpers are replaced with ``importlib.metadata`` equivalents.
"""
import importlib.util
import os.path as osp
import warnings
from importlib import metadata
from typing import Optional

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['load_checkpoint_file', 'load_checkpoint_url', 'apply']


def load_checkpoint_file(filename: str, map_location=None) -> dict:
    """mmengine's local-file loader, with ``weights_only=False``."""
    from .converters import convert_checkpoint
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    checkpoint = torch.load(filename, map_location=map_location, weights_only=False)
    return convert_checkpoint(checkpoint, filename)


def load_checkpoint_url(filename: str, map_location=None,
                        model_dir: Optional[str] = None) -> dict:
    """mmengine's HTTP(S) loader (rank 0 downloads first), ``weights_only=False``."""
    from torch.hub import load_state_dict_from_url

    def load() -> dict:
        return load_state_dict_from_url(filename, model_dir=model_dir,
                                        map_location=map_location,
                                        weights_only=False)

    from .converters import convert_checkpoint
    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = load()
    if world_size > 1:
        barrier()
        if rank > 0:
            checkpoint = load()
    return convert_checkpoint(checkpoint, filename)


def _patch_checkpoint_loaders() -> None:
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                     loader=load_checkpoint_url, force=True)


def _has_pkg_resources() -> bool:
    with warnings.catch_warnings():
        # setuptools >= 81 warns on import that pkg_resources is deprecated.
        warnings.simplefilter('ignore')
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            return False
    return True


def _distribution_top_level(dist: metadata.Distribution, package: str) -> str:
    top_level = dist.read_text('top_level.txt')
    if top_level:
        return top_level.split()[0]
    names = {f.parts[0] for f in (dist.files or []) if len(f.parts) > 1}
    if package.replace('-', '_') in names:
        return package.replace('-', '_')
    raise ValueError(f'can not infer the module name of {package}')


def is_installed(package: str) -> bool:
    """``mmengine.utils.is_installed`` without pkg_resources."""
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """``mmengine.utils.get_installed_path`` without pkg_resources."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise
        if spec.origin is None:
            raise RuntimeError(f'{package} is a namespace package, which is invalid '
                               'for `get_install_path`')
        return osp.dirname(spec.origin)
    location = str(dist.locate_file(''))
    path = osp.join(location, package)
    if osp.exists(path):
        return path
    return osp.join(location, _distribution_top_level(dist, package))


def package2module(package: str) -> str:
    """``mmengine.utils.package_utils.package2module`` without pkg_resources."""
    return _distribution_top_level(metadata.distribution(package), package)


def _patch_package_utils() -> None:
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils
    import mmengine.utils.package_utils as package_utils
    for module in (package_utils, utils, config_module, hub_module):
        for name, fn in (('is_installed', is_installed),
                         ('get_installed_path', get_installed_path),
                         ('package2module', package2module)):
            if hasattr(module, name):
                setattr(module, name, fn)


def apply(force_package_utils: bool = False) -> None:
    """Applies the fixes (the package-utils one only where pkg_resources is
    missing, or when forced, which the tests use)."""
    _patch_checkpoint_loaders()
    if force_package_utils or not _has_pkg_resources():
        _patch_package_utils()


apply()
