"""Fixtures shared by the test packages.

Only mm-free imports at module level: ``tests/ops_dcnv3`` also runs on
machines with torch alone.
"""
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, require_compiled_if_built  # noqa: E402

# The tools are scripts, not a package: their helpers import as top-level
# modules (``config_loader``, ``make_synthetic_data``), as when the tools run.
for path in (REPO_ROOT, REPO_ROOT / 'tools'):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture
def require_core_op():
    """Call with a core_op name: fails if the compiled op is built but broken."""
    return require_compiled_if_built


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory) -> Path:
    """A few tiny images in both synthetic layouts (COCO and ADE20K)."""
    from make_synthetic_data import generate
    out = tmp_path_factory.mktemp('synthetic')
    generate(str(out), coco_num=(4, 2), ade_num=(4, 2), size=96)
    return out
