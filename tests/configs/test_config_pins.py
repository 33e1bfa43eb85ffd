"""Every config resolves to the pinned backbone settings, parameter count and
optimizer groups (lr and weight decay of every parameter).

The pins, ``tests/data/config_pins.json``, were written before the configs
were rewritten to name their variant (``arch='l'``) and before the layer-decay
constructor asked the backbone for layer depths, so this test proves that
refactor changed no recipe. Regenerate them only for an intended recipe
change::

    python -m tests.configs.test_config_pins --write

Models are built on the meta device: no memory, no initialisation.
"""
import copy
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import torch

from tests.helpers import DATA_DIR, REPO_ROOT

PINS = DATA_DIR / 'config_pins.json'
CONFIGS = sorted((REPO_ROOT / 'configs').glob('coco/*.py')) + sorted(
    (REPO_ROOT / 'configs').glob('ade20k/*.py')) + sorted(
        (REPO_ROOT / 'configs').glob('demo/*.py'))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def resolved_backbone(model: torch.nn.Module) -> Dict[str, Any]:
    """The constructor arguments the built backbone resolved to."""
    from projects.internimage import CBInternImage, InternImage
    backbone = model.backbone
    assert isinstance(backbone, (InternImage, CBInternImage))
    return _jsonable(backbone.settings)


def optimizer_table(model: torch.nn.Module, optim_wrapper_cfg) -> Dict[str, Any]:
    """(lr, weight decay) of every parameter: a hash over all of them, and
    the number of tensors that share each (lr, weight decay) pair."""
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, copy.deepcopy(optim_wrapper_cfg))
    names = {id(p): n for n, p in model.named_parameters()}
    defaults = wrapper.optimizer.defaults
    rows: List[str] = []
    pairs: Dict[str, int] = {}
    for group in wrapper.optimizer.param_groups:
        lr = float(group.get('lr', defaults['lr']))
        wd = float(group.get('weight_decay', defaults.get('weight_decay', 0.)))
        key = f'{lr!r} {wd!r}'
        for p in group['params']:
            rows.append(f'{names[id(p)]} {key}')
            pairs[key] = pairs.get(key, 0) + 1
    rows.sort()
    return dict(
        num_tensors=len(rows),
        sha256=hashlib.sha256('\n'.join(rows).encode()).hexdigest(),
        lr_wd_tensors=dict(sorted(pairs.items())))


def config_pin(cfg) -> Dict[str, Any]:
    """The pinned facts of one loaded config."""
    from mmengine.registry import MODELS
    cfg = copy.deepcopy(cfg)
    checkpoint = (cfg.model.backbone.get('init_cfg') or {}).get('checkpoint')
    if checkpoint and '://' not in checkpoint and os.path.isabs(checkpoint):
        # a file of the repository (a {{ fileDirname }} path, as the demo's):
        # pinned relative to its root, so that the pin holds in every clone
        checkpoint = Path(os.path.relpath(os.path.normpath(checkpoint), REPO_ROOT)).as_posix()
    cfg.model.backbone.init_cfg = None
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return dict(
        backbone=resolved_backbone(model),
        pretrained=checkpoint,
        num_params=sum(p.numel() for p in model.parameters()),
        optimizer=optimizer_table(model, cfg.optim_wrapper))


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_matches_pin(path, load_cfg):
    pins = json.loads(PINS.read_text())
    assert path.stem in pins, f'{path.stem} has no pin in {PINS}'
    got = json.loads(json.dumps(config_pin(load_cfg(path))))
    want = pins[path.stem]
    assert got['backbone'] == want['backbone']
    assert got['pretrained'] == want['pretrained']
    assert got['num_params'] == want['num_params']
    assert got['optimizer'] == want['optimizer']


def test_every_pin_has_a_config():
    assert set(json.loads(PINS.read_text())) == {p.stem for p in CONFIGS}


def _write() -> None:
    from tests.configs.conftest import load_config
    pins = {p.stem: config_pin(load_config(p)) for p in CONFIGS}
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + '\n')
    print(f'wrote {len(pins)} pins to {PINS}')


if __name__ == '__main__':
    if sys.argv[1:] != ['--write']:
        sys.exit('usage: python -m tests.configs.test_config_pins --write')
    _write()
