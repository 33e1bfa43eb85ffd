"""``projects`` is a PEP 420 namespace: this project's ``projects.internimage``
and another repository's ``projects`` folder (mmdet's ``projects.DiffusionDet``,
say) import side by side, whichever comes first on ``sys.path``.

With a regular ``projects`` package (a ``projects/__init__.py``), Python
stops at that package and the other repository's projects fail to import.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.helpers import REPO_ROOT

#: Imports this project's package first (the order that hid the other
#: projects), then the other repository's, and says where each came from.
IMPORT_BOTH = """
import projects.internimage as ours
import projects.Other.other as theirs
print('ours', ours.__file__)
print('theirs', theirs.__file__, theirs.VALUE)
"""


@pytest.fixture(scope='module')
def other_root(tmp_path_factory) -> Path:
    """An mmdet-style repository root: ``projects/Other/other/__init__.py``
    and no ``projects/__init__.py``."""
    root = tmp_path_factory.mktemp('other_repo')
    package = root / 'projects' / 'Other' / 'other'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('VALUE = 42\n')
    return root


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> Path:
    """This project installed (not editable) by pip from a copy of its
    sources, as a user's ``pip install`` lays it out in site-packages."""
    tmp = tmp_path_factory.mktemp('install')
    src = tmp / 'src'
    src.mkdir()
    shutil.copytree(REPO_ROOT / 'projects', src / 'projects',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(REPO_ROOT / name, src / name)
    target = tmp / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                    '--no-build-isolation', '--no-compile', '--target', str(target), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    return target


def import_both(path: List[Path], cwd: Path) -> str:
    """Run :data:`IMPORT_BOTH` in a fresh interpreter with ``path`` in front
    of ``sys.path`` (``PYTHONPATH``), from ``cwd``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in path))
    result = subprocess.run([sys.executable, '-c', IMPORT_BOTH], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_installed_package_has_no_projects_init(installed):
    assert (installed / 'projects' / 'internimage' / '__init__.py').is_file()
    assert not (installed / 'projects' / '__init__.py').exists()


@pytest.mark.parametrize('other_first', [True, False], ids=['other_first', 'other_last'])
def test_installed_package_imports_beside_other_projects(installed, other_root, other_first,
                                                         tmp_path):
    path = [other_root, installed] if other_first else [installed, other_root]
    out = import_both(path, tmp_path)
    assert f'ours {installed}' in out
    assert f'theirs {other_root}' in out and out.rstrip().endswith('42')


@pytest.mark.parametrize('other_first', [True, False], ids=['other_first', 'other_last'])
def test_checkout_imports_beside_other_projects(other_root, other_first, tmp_path):
    """The repository root on ``sys.path`` (running from a checkout)."""
    path = [other_root, REPO_ROOT] if other_first else [REPO_ROOT, other_root]
    out = import_both(path, tmp_path)
    assert f'ours {REPO_ROOT}' in out
    assert f'theirs {other_root}' in out
