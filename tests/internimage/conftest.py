"""Fixtures for the InternImage backbone tests."""
from pathlib import Path

import pytest

from .internimage_utils import GOLDEN_DIR, compiled_state


@pytest.fixture
def golden_dir() -> Path:
    """The golden-vector directory; a failure (not a skip) when it is missing."""
    if not GOLDEN_DIR.is_dir() or not list(GOLDEN_DIR.glob('backbone_*.pt')):
        pytest.fail(f'golden vectors not found at {GOLDEN_DIR} (expected ../shared/golden '
                    'beside the repository, with backbone_*.pt files)')
    return GOLDEN_DIR


@pytest.fixture
def require_core_op():
    """Call with a core_op name: fails if the compiled op is built but broken."""

    def check(core_op: str) -> None:
        if core_op == 'DCNv3' and compiled_state() == 'broken':
            import ops_dcnv3._ext as ext
            pytest.fail('ops_dcnv3._C exists but does not import: '
                        f"{getattr(ext, '_IMPORT_ERROR', '?')}")

    return check
