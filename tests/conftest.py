"""Fixtures shared by the test packages.

Only mm-free imports at module level: ``tests/ops_dcnv3`` also runs on
machines with torch alone.
"""
import sys
from pathlib import Path

import pytest

# (the repository root is on sys.path)
from tests.helpers import REPO_ROOT, tf32_disabled  # noqa: E402

# The tools are scripts, not a package: their helpers import as top-level
# modules (``config_loader``, ``make_synthetic_data``), as when the tools run.
for path in (REPO_ROOT, REPO_ROOT / 'tools'):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory) -> Path:
    """A few tiny images in both synthetic layouts (COCO and ADE20K)."""
    from make_synthetic_data import generate
    out = tmp_path_factory.mktemp('synthetic')
    generate(str(out), coco_num=(4, 2), ade_num=(4, 2), size=96)
    return out


@pytest.fixture
def no_tf32():
    """TF32 off for the test (restored after): GPU tests that compare float32
    results use this one fixture, e.g. ``pytestmark =
    pytest.mark.usefixtures('no_tf32')``. See tests.helpers.tf32_disabled."""
    with tf32_disabled():
        yield
