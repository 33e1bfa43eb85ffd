"""The project's patches to the released OpenMMLab 2.0 stack, in one place.

Importing ``projects.internimage`` patches nothing. The patches are applied
by :func:`apply` (idempotent), which importing this module calls:

* configs list it: ``custom_imports=dict(imports=['projects.internimage',
  'projects.internimage.compat'])``;
* the tools call ``compat.apply()`` before they parse a config, so that
  parsing the config's ``mmdet::``/``mmseg::`` bases already benefits.

The patches and why they exist:

1. **Checkpoint loaders.** mmengine's loaders for local files and HTTP(S)
   URLs call ``torch.load(f, map_location)``. Since torch 2.6 that means
   ``weights_only=True`` without the types mmengine's own checkpoints hold,
   so ``resume`` fails; before 2.6 it meant unpickling (running) anything.
   Both schemes are re-registered, through mmengine's own
   ``CheckpointLoader.register_scheme``, with
   :func:`~.checkpoint.reader.load_checkpoint_file`: CRC-checked, weights
   only with an allowlist of the types real checkpoints hold (any other file
   refused with an ``UnsafeCheckpointError`` unless trusted through
   ``INTERNIMAGE_TRUSTED_CHECKPOINTS`` or ``trusted_checkpoints``), NaN/inf
   weights refused, reference layouts converted (:mod:`.checkpoint.converters`).
2. **Package helpers without pkg_resources.** mmengine resolves
   ``mmdet::``/``mmseg::`` bases with ``pkg_resources``, which setuptools 81
   deprecates (a ``pkg_resources is deprecated`` warning on every lookup,
   and a slow reload of pkg_resources each time) and setuptools 82 removes
   (the lookup fails). mmengine's ``is_installed``, ``get_installed_path``
   and ``package2module`` are replaced with ``importlib.metadata``
   equivalents, so pkg_resources is never imported and never warns.
3. **The DCNv3 FLOP handle.** mmengine's complexity counter (and so mmdet's
   and mmseg's ``tools/analysis_tools/get_flops.py``) counts only operators
   it has a handle for; :func:`~.apis.flops.register_dcnv3_flop_handle` adds
   one for ``ops_dcnv3::dcnv3`` to its default table (a private table of
   ``mmengine.analysis``).
"""
import importlib.util
import os.path as osp
from importlib import metadata

from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint.reader import load_checkpoint_file, load_checkpoint_url

__all__ = ['load_checkpoint_file', 'load_checkpoint_url', 'is_installed',
           'get_installed_path', 'package2module', 'apply']


def _patch_checkpoint_loaders() -> None:
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                     loader=load_checkpoint_url, force=True)


def _distribution_top_level(dist: metadata.Distribution, package: str) -> str:
    top_level = dist.read_text('top_level.txt')
    if top_level:
        return top_level.split()[0]
    names = {f.parts[0] for f in (dist.files or []) if len(f.parts) > 1}
    if package.replace('-', '_') in names:
        return package.replace('-', '_')
    raise ValueError(f'can not infer the module name of {package}')


def is_installed(package: str) -> bool:
    """``mmengine.utils.is_installed`` without pkg_resources.

    Args:
        package: Distribution (or module) name.
    """
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """``mmengine.utils.get_installed_path`` without pkg_resources.

    Args:
        package: Distribution (or module) name.
    """
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
    """``mmengine.utils.package_utils.package2module`` without pkg_resources.

    Args:
        package: Distribution name.
    """
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


def apply() -> None:
    """Apply the patches listed in the module docstring (idempotent)."""
    from .apis.flops import register_dcnv3_flop_handle
    _patch_checkpoint_loaders()
    _patch_package_utils()
    register_dcnv3_flop_handle()


apply()
