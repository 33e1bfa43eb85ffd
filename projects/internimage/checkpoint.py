"""Loading published InternImage checkpoints into the backbone.

Handles the layouts the model zoo uses: weights under ``model``
(classification), under ``state_dict`` with a ``backbone.`` prefix
(detection/segmentation, mmdet 2.x / mmseg 0.x) or at the top level, with or
without a DDP ``module.`` prefix. Shapes are checked before anything is
loaded; missing and unexpected keys are logged, separating the expected ones
(classifier head, absent layer scale) from the rest.
"""
import logging
import re
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

#: Key prefixes of classification-only parts, ignored when found in a checkpoint.
CLASSIFIER_PREFIXES = ('conv_head.', 'head.', 'clip_projector.', 'fc_norm.')
#: Key suffixes that may be missing (checkpoints trained without layer scale);
#: they keep their initial value ``layer_scale``.
LAYER_SCALE_SUFFIXES = ('.gamma1', '.gamma2')


def extract_weights(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint: under ``model``, else ``state_dict``,
    else the top level. Non-tensor entries are dropped."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'a checkpoint must be a dict, got {type(checkpoint).__name__}')
    weights = checkpoint
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint.get(key), Mapping):
            weights = checkpoint[key]
            break
    return {k: v for k, v in weights.items() if isinstance(v, torch.Tensor)}


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def strip_prefixes(weights: Mapping[str, torch.Tensor],
                   prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Backbone keys of a checkpoint.

    Strips a leading ``module.``; then, if any key starts with ``prefix``
    (default ``backbone.``), keeps only those keys, without the prefix.
    """
    prefix = 'backbone.' if prefix is None else prefix
    weights = {_strip(k, 'module.'): v for k, v in weights.items()}
    if prefix and any(k.startswith(prefix) for k in weights):
        weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    return weights


def check_shapes(weights: Mapping[str, torch.Tensor],
                 model_state: Mapping[str, torch.Tensor]) -> None:
    """Raise ValueError naming every key whose shape differs from the model's."""
    bad = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(model_state[k].shape)}'
           for k, v in weights.items()
           if k in model_state and tuple(v.shape) != tuple(model_state[k].shape)]
    if bad:
        more = f'; ... and {len(bad) - 8} more' if len(bad) > 8 else ''
        raise ValueError(f'checkpoint does not fit the model ({len(bad)} tensor(s) of a '
                         'different shape; wrong variant or width?): ' + '; '.join(bad[:8])
                         + more)


def summarize_keys(keys: Iterable[str]) -> str:
    """Compact text for many keys: numeric path parts become ``*``, with counts,
    e.g. ``levels.*.blocks.*.gamma1 (x30)``."""
    groups: Dict[str, List[str]] = {}
    for key in keys:
        groups.setdefault(re.sub(r'(?<=\.)\d+(?=\.)|^\d+(?=\.)', '*', key), []).append(key)
    return ', '.join(ks[0] if len(ks) == 1 else f'{p} (x{len(ks)})' for p, ks in groups.items())


def split_expected(missing: Iterable[str], unexpected: Iterable[str]
                   ) -> Tuple[List[str], List[str], List[str], List[str]]:
    """``(expected missing, other missing, expected unexpected, other unexpected)``."""
    missing, unexpected = list(missing), list(unexpected)
    exp_missing = [k for k in missing if k.endswith(LAYER_SCALE_SUFFIXES)]
    exp_unexpected = [k for k in unexpected if k.startswith(CLASSIFIER_PREFIXES)]
    return (exp_missing, [k for k in missing if k not in exp_missing],
            exp_unexpected, [k for k in unexpected if k not in exp_unexpected])


def log_key_report(missing: Iterable[str], unexpected: Iterable[str],
                   logger: str = 'current') -> None:
    """One log line per kind of key mismatch; expected kinds at INFO level."""
    exp_missing, missing, exp_unexpected, unexpected = split_expected(missing, unexpected)
    lines = [
        (exp_unexpected, logging.INFO,
         'ignored {n} classifier key(s) of the checkpoint (expected): {keys}'),
        (unexpected, logging.WARNING, '{n} unexpected key(s) in the checkpoint: {keys}'),
        (exp_missing, logging.INFO,
         '{n} layer-scale key(s) absent from the checkpoint keep their initial '
         'value (expected): {keys}'),
        (missing, logging.WARNING,
         '{n} key(s) missing from the checkpoint keep their initial value: {keys}'),
    ]
    for keys, level, text in lines:
        if keys:
            print_log('InternImage: ' + text.format(n=len(keys), keys=summarize_keys(keys)),
                      logger=logger, level=level)


def load_pretrained(model: nn.Module, filename: str, map_location: str = 'cpu',
                    prefix: Optional[str] = None,
                    logger: str = 'current') -> Tuple[List[str], List[str]]:
    """Load a checkpoint file into ``model`` (see the module docstring).

    Returns ``(missing_keys, unexpected_keys)``.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    weights = strip_prefixes(extract_weights(checkpoint), prefix)
    check_shapes(weights, model.state_dict())
    result = model.load_state_dict(weights, strict=False)
    loaded = len(weights) - len(result.unexpected_keys)
    print_log(f'InternImage: loaded {loaded} tensors from {filename}', logger=logger)
    log_key_report(result.missing_keys, result.unexpected_keys, logger=logger)
    return list(result.missing_keys), list(result.unexpected_keys)
