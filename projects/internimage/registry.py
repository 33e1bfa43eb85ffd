"""Registration of the backbone in the mmdet and mmseg model registries."""
import importlib
from typing import List

from .backbone import InternImage


def register_backbone() -> List[str]:
    """Register :class:`InternImage` as ``InternImage`` in the mmdet and mmseg
    ``MODELS`` registries (those installed); returns the scopes used."""
    scopes = []
    for scope in ('mmdet', 'mmseg'):
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except ModuleNotFoundError as exc:
            if exc.name != scope:  # installed but broken: say so
                raise
            continue
        if registry.module_dict.get('InternImage') is not InternImage:
            registry.register_module(name='InternImage', module=InternImage)
        scopes.append(scope)
    return scopes
