"""Fixtures of the config tests (``synthetic_data`` is in tests/conftest.py):
config loading, and the published facts of ``configs/metafile.yml``."""
import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

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


#: The published facts of the model-zoo configs (OpenMMLab metafile format).
METAFILE = Path(__file__).resolve().parents[2] / 'configs' / 'metafile.yml'
#: The metafile's backbone names (first ``Architecture`` entry of a model):
#: ``InternImage-H``, or ``CB-InternImage-H`` for the composite backbone.
VARIANTS = {f'{cb}InternImage-{v.upper()}': v for v in ('t', 's', 'b', 'l', 'xl', 'h')
            for cb in ('', 'CB-')}


@dataclass(frozen=True)
class ZooModel:
    """One ``Models`` entry of ``configs/metafile.yml``, its fields parsed.

    Args:
        name: the config's file stem (the entry's ``Name``).
        collection: ``In Collection`` (Mask R-CNN, Cascade Mask R-CNN, DINO,
            UperNet, Mask2Former).
        config: ``Config``, relative to the repository root.
        variant: the backbone variant (``arch``), from ``Architecture``.
        metadata: the ``Metadata`` mapping as written.
        metrics: every ``Results`` metric by name (``box AP``, ``mask AP``,
            ``mIoU``, ``mIoU(ms+flip)``).
        weights: ``Weights`` (None: no published checkpoint).
    """
    name: str
    collection: str
    config: str
    variant: str
    metadata: Dict[str, Any]
    metrics: Dict[str, float]
    weights: Optional[str]

    @property
    def composite(self) -> bool:
        """The backbone is two InternImage composed (``CB-InternImage-*``)."""
        return self.metadata['Architecture'][0].startswith('CB-')

    @property
    def backbone_type(self) -> str:
        """The config's ``model.backbone.type``."""
        return 'CBInternImage' if self.composite else 'InternImage'

    def get(self, field: str, default: Any = None) -> Any:
        """A ``Metadata`` field, or ``default`` where the entry has none."""
        return self.metadata.get(field, default)

    @property
    def params_m(self) -> float:
        """``Parameters`` (published, rounded: ``49M``, ``1.31B``) in millions."""
        return parse_count(self.metadata['Parameters'], self.name)

    @property
    def params_half_unit_m(self) -> float:
        """Half the unit of ``Parameters``' last digit, in millions (the
        rounding error of the figure: ``49M`` 0.5, ``1.31B`` 5, ``1.1B`` 50)."""
        text = str(self.metadata['Parameters'])
        decimals = len(text[:-1].partition('.')[2])
        return 0.5 * 10.0**-decimals * (1000 if text.endswith('B') else 1)

    @property
    def flops_g(self) -> Optional[float]:
        """``FLOPs`` (published: ``270G``) in GFLOPs; None where unpublished."""
        flops = self.metadata.get('FLOPs')
        return None if flops is None else parse_count(flops, self.name)


def parse_count(text: str, where: str = '') -> float:
    """``'49M'`` -> 49.0, ``'1.31B'`` -> 1310.0, ``'270G'`` -> 270.0.

    Args:
        text: a published count with its unit letter (M, B or G).
        where: what the count belongs to, for the error message.
    """
    match = re.fullmatch(r'(\d+(?:\.\d+)?)([MBG])', str(text))
    if not match:
        raise ValueError(f'{where}: {text!r} is not a count such as 49M, 1.31B or 270G')
    return float(match.group(1)) * (1000 if match.group(2) == 'B' else 1)


def load_zoo(path: Path = METAFILE) -> Dict[str, ZooModel]:
    """The metafile's models by name; a missing field is an error naming the
    model and the field."""
    import yaml
    raw = yaml.safe_load(path.read_text())
    models = {}
    for entry in raw['Models']:
        name = entry.get('Name', '<no Name>')
        try:
            meta = entry['Metadata']
            variant = VARIANTS[meta['Architecture'][0]]
            metrics = {k: v for result in entry['Results']
                       for k, v in result['Metrics'].items()}
            models[name] = ZooModel(name, entry['In Collection'], entry['Config'],
                                    variant, meta, metrics, entry.get('Weights'))
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f'{path.name}: model {name}: missing or malformed {e}') from e
    return models


@pytest.fixture(scope='session')
def zoo() -> Dict[str, ZooModel]:
    """``configs/metafile.yml``'s models by name (the config stems)."""
    return load_zoo()
