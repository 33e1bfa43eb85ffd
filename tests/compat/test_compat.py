"""The project's fixes for the released stack on current torch/setuptools."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import projects.internimage.compat as compat

REPO = Path(__file__).resolve().parents[2]


def _mmengine_style_checkpoint(path: Path) -> None:
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
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO,
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
