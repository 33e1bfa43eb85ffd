"""Fixtures of the config tests (``synthetic_data`` is in tests/conftest.py)."""
import copy
from pathlib import Path
from typing import Union

import pytest


def load_config(path: Union[str, Path]):
    """The config at ``path``, its task package's modules registered and its
    ``default_scope`` made the registries' default (as the tools do)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(path))
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        from mmdet.utils import register_all_modules
    elif scope == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        raise ValueError(f'{path}: default_scope must be mmdet or mmseg, got {scope!r}')
    register_all_modules(init_default_scope=False)
    init_default_scope(scope)
    return cfg


@pytest.fixture(scope='session')
def load_cfg():
    """``load_cfg(path)``: a fresh copy of the config at ``path`` (each file
    is parsed once per session: parsing mmdet/mmseg bases is slow)."""
    cache = {}

    def load(path):
        path = str(path)
        if path not in cache:
            cache[path] = load_config(path)
        else:
            load_config_scope(cache[path])
        return copy.deepcopy(cache[path])

    return load


def load_config_scope(cfg) -> None:
    """Make ``cfg``'s task scope the registries' default again."""
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
