"""Fixtures of the config tests (``synthetic_data`` is in tests/conftest.py)."""
import copy

import pytest


@pytest.fixture(scope='session')
def load_cfg():
    """``load_cfg(path)``: a fresh copy of the config at ``path`` (each file
    is parsed once per session: parsing mmdet/mmseg bases is slow)."""
    from config_loader import load_config
    cache = {}

    def load(path):
        path = str(path)
        if path not in cache:
            cache[path] = load_config(path)
        return copy.deepcopy(cache[path])

    return load
