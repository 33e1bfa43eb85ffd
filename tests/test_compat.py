"""The project's fixes for the released stack on current torch/setuptools."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import projects.internimage.compat as compat
from tests.helpers import REPO_ROOT

def _mmengine_style_checkpoint(path) -> None:
    """What mmengine's Runner.save_checkpoint writes: meta with a message hub
    (HistoryBuffer objects) and numpy values, beside the weights."""
    torch.save({
        'meta': {'epoch': 3, 'iter': 30, 'seed': np.int64(7),
                 'message_hub': {'log_scalars': {'train/loss': HistoryBuffer([1.0, 0.5], [1, 1])}}},
        'state_dict': {'w': torch.arange(4.0)},
    }, path)


def test_plain_torch_load_refuses_mmengine_checkpoints(tmp_path):
    """The gap itself: torch's default weights_only=True (torch >= 2.6)."""
    path = tmp_path / 'ckpt.pth'
    _mmengine_style_checkpoint(path)
    with pytest.raises(Exception, match='[Ww]eights only load failed|weights_only'):
        torch.load(path)


def test_mmengine_loads_its_checkpoints_with_the_fix(tmp_path):
    path = tmp_path / 'ckpt.pth'
    _mmengine_style_checkpoint(path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['iter'] == 30
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(4.0))
    assert CheckpointLoader._get_checkpoint_loader(str(path)) is compat.load_checkpoint_file
    assert CheckpointLoader._get_checkpoint_loader(
        'https://example.org/x.pth') is compat.load_checkpoint_url


def test_missing_local_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


# Simulates setuptools >= 82 (no pkg_resources) in a fresh interpreter.
NO_PKG_RESOURCES = """
    import sys, warnings
    warnings.simplefilter('ignore')
    sys.modules['pkg_resources'] = None
"""
PARSE_MMDET_BASE = """
    from mmengine.config import Config
    cfg = Config.fromstring("_base_ = 'mmdet::_base_/default_runtime.py'", '.py')
    print('scope:', cfg.default_scope)
"""


def test_without_pkg_resources_mmengine_cannot_resolve_mmdet_bases():
    result = _run(NO_PKG_RESOURCES + PARSE_MMDET_BASE)
    assert result.returncode != 0
    assert 'pkg_resources' in result.stderr


def test_without_pkg_resources_the_fix_resolves_mmdet_and_mmseg_bases():
    result = _run(NO_PKG_RESOURCES + """
    import projects.internimage.compat
    from mmengine.utils import is_installed, get_installed_path
    assert is_installed('mmdet') and not is_installed('surely-not-a-package-xyz')
    print('mmseg at', get_installed_path('mmsegmentation'))
    """ + PARSE_MMDET_BASE)
    assert result.returncode == 0, result.stderr
    assert 'scope: mmdet' in result.stdout
    assert 'mmseg' in result.stdout.split('mmseg at')[1]


def test_replacements_agree_with_pkg_resources():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from mmengine.utils.package_utils import get_installed_path as original
    for package in ('mmdet', 'mmsegmentation', 'mmengine', 'mmcv'):
        assert compat.get_installed_path(package) == original(package)
    assert compat.package2module('mmsegmentation') == 'mmseg'


# Imports a submodule without running the package __init__ (an empty
# package module stands in for it), to check the submodule alone.
WITHOUT_PACKAGE_INIT = f"""
    import sys, types
    pkg = types.ModuleType('projects.internimage')
    pkg.__path__ = [{str(REPO_ROOT / 'projects' / 'internimage')!r}]
    sys.modules['projects.internimage'] = pkg
"""


def _patched_state_after(imports: str, prelude: str = '') -> str:
    """In a fresh interpreter: import ``imports``, then report whether
    mmengine's local checkpoint loader and package helpers are still its own."""
    result = _run(prelude + f"""
    import {imports}
    import mmengine.utils.package_utils as pu
    from mmengine.runner.checkpoint import CheckpointLoader
    loader = CheckpointLoader._get_checkpoint_loader('x.pth')
    print('loader', loader.__module__)
    print('is_installed', pu.is_installed.__module__)
    """)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_project_modules_patches_nothing():
    out = _patched_state_after('projects.internimage.checkpoint, projects.internimage.models, '
                               'projects.internimage.engine', WITHOUT_PACKAGE_INIT)
    assert 'loader mmengine.runner.checkpoint' in out
    assert 'is_installed mmengine.utils.package_utils' in out


def test_importing_the_package_patches_nothing():
    out = _patched_state_after('projects.internimage')
    assert 'loader mmengine.runner.checkpoint' in out
    assert 'is_installed mmengine.utils.package_utils' in out


def test_importing_compat_applies_the_patches():
    out = _patched_state_after('projects.internimage.compat')
    assert 'loader projects.internimage.checkpoint.reader' in out
    assert 'is_installed projects.internimage.compat' in out


def test_parsing_mmdet_bases_after_apply_does_not_warn_about_pkg_resources():
    code = """
    import sys, warnings
    from projects.internimage import compat
    compat.apply()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
    """ + textwrap.indent(textwrap.dedent(PARSE_MMDET_BASE), '    ') + """
    print('warnings:', [str(w.message)[:60] for w in caught if 'pkg_resources' in str(w.message)])
    print('imported:', 'pkg_resources' in sys.modules)
    """
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert 'scope: mmdet' in result.stdout
    assert 'warnings: []' in result.stdout and 'imported: False' in result.stdout
    assert 'pkg_resources is deprecated' not in result.stderr
