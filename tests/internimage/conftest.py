"""Fixtures for the InternImage backbone tests."""
import pytest

from tests.helpers import require_compiled_if_built


@pytest.fixture
def require_core_op():
    """Call with a core_op name: fails if the compiled op is built but broken."""
    return require_compiled_if_built
