"""Loading published InternImage checkpoints into the backbone.

Handles the layouts the model zoo uses (found by
:func:`.weights.find_weights`): weights under ``state_dict`` with a
``backbone.`` prefix (detection/segmentation, mmdet 2.x / mmseg 0.x), under
``model`` (classification) or at the top level, with or without a DDP
``module.`` prefix (other prefixes: ``init_cfg`` ``prefix``). Files are read
by :func:`.reader.load_checkpoint_file` (damaged files, NaN/inf weights and
code-running pickles handled there).

Shapes are checked before anything is loaded. Then every backbone key must
load, except the expected ones: classifier keys of a classification
checkpoint (ignored), and layer-scale gammas when the checkpoint has none
(they keep their initial value). Anything else missing is a ValueError naming
the file, how many keys matched and the first missing and unexpected keys
(and a likely prefix): a checkpoint that matches nothing never trains from
random weights silently. ``init_cfg=dict(type='Pretrained', checkpoint=...,
strict=False)`` loads what matches and warns about the rest.
"""
import logging
import os.path as osp
import re
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from .reader import load_checkpoint_file, load_checkpoint_url
from .weights import compare_keys, find_weights, first_of, tensors

#: Key prefixes of classification-only parts, ignored when found in a checkpoint.
CLASSIFIER_PREFIXES = ('conv_head.', 'head.', 'clip_projector.', 'fc_norm.')
#: Key suffixes that may be missing (checkpoints trained without layer scale);
#: they keep their initial value ``layer_scale``.
LAYER_SCALE_SUFFIXES = ('.gamma1', '.gamma2')


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
    bad = compare_keys(weights, model_state).shapes
    if bad:
        raise ValueError(f'checkpoint does not fit the model ({len(bad)} tensor(s) of a '
                         'different shape; wrong variant or width?): '
                         + first_of(bad, shown=8, sep='; '))


def summarize_keys(keys: Iterable[str]) -> str:
    """Compact text for many keys: numeric path parts become ``*``, with counts,
    e.g. ``levels.*.blocks.*.gamma1 (x30)``."""
    groups: Dict[str, List[str]] = {}
    for key in keys:
        groups.setdefault(re.sub(r'(?<=\.)\d+(?=\.)|^\d+(?=\.)', '*', key), []).append(key)
    return ', '.join(ks[0] if len(ks) == 1 else f'{p} (x{len(ks)})' for p, ks in groups.items())


def split_expected(missing: Iterable[str], unexpected: Iterable[str],
                   checkpoint_has_layer_scale: bool = False
                   ) -> Tuple[List[str], List[str], List[str], List[str]]:
    """``(expected missing, other missing, expected unexpected, other unexpected)``.

    Expected: classifier keys the checkpoint has and the backbone does not,
    and layer-scale gammas the backbone has when the checkpoint has none at
    all (a variant trained without layer scale).
    """
    missing, unexpected = list(missing), list(unexpected)
    exp_missing = [] if checkpoint_has_layer_scale else [
        k for k in missing if k.endswith(LAYER_SCALE_SUFFIXES)]
    exp_unexpected = [k for k in unexpected if k.startswith(CLASSIFIER_PREFIXES)]
    return (exp_missing, [k for k in missing if k not in exp_missing],
            exp_unexpected, [k for k in unexpected if k not in exp_unexpected])


def log_key_report(missing: Iterable[str], unexpected: Iterable[str],
                   logger: str = 'current', checkpoint_has_layer_scale: bool = False) -> None:
    """One log line per kind of key mismatch; expected kinds at INFO level."""
    exp_missing, missing, exp_unexpected, unexpected = split_expected(
        missing, unexpected, checkpoint_has_layer_scale)
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


def guess_prefix(checkpoint_keys: Iterable[str], model_keys: Iterable[str]) -> Optional[str]:
    """The prefix that, stripped from the checkpoint's keys, makes the most of
    them model keys (``'module.module.'``, ``'encoder.'``...), or None."""
    model_keys = set(model_keys)
    counts: Dict[str, int] = {}
    for key in checkpoint_keys:
        parts = key.split('.')
        for i in range(1, len(parts)):
            if '.'.join(parts[i:]) in model_keys:
                prefix = '.'.join(parts[:i]) + '.'
                counts[prefix] = counts.get(prefix, 0) + 1
                break
    return max(counts, key=counts.get) if counts else None


def check_match(filename: str, checkpoint: object, weights: Mapping[str, torch.Tensor],
                model_keys: List[str], missing: List[str], unexpected: List[str],
                checkpoint_has_layer_scale: bool) -> None:
    """Raise ValueError when backbone keys that are not expected to be missing
    did not load (see :func:`split_expected`), naming the file, how many keys
    matched and the first missing and unexpected keys."""
    _, other_missing, _, other_unexpected = split_expected(
        missing, unexpected, checkpoint_has_layer_scale)
    if not other_missing:
        return
    matched = len(model_keys) - len(missing)
    text = (f'InternImage: the checkpoint {filename} does not fit the backbone: '
            f'{matched} of its {len(model_keys)} tensors matched a checkpoint key; '
            f'{len(other_missing)} missing, first: {first_of(other_missing)}')
    if other_unexpected:
        text += f'; {len(other_unexpected)} unexpected, first: {first_of(other_unexpected)}'
    if not weights:
        top = list(checkpoint) if isinstance(checkpoint, Mapping) else []
        text += (f'; no tensors found under state_dict/model/the top level (top-level keys: '
                 f'{first_of([str(k) for k in top])})')
    prefix = guess_prefix(weights, model_keys)
    if prefix:
        text += f"; its keys look prefixed with {prefix!r}: try init_cfg prefix='{prefix}'"
    text += (". To load it anyway, set init_cfg=dict(type='Pretrained', checkpoint=..., "
             'strict=False)')
    raise ValueError(text)


def read_pretrained(filename: str, map_location: str = 'cpu') -> object:
    """A checkpoint from a local path or an http(s) URL (read by
    :mod:`.reader`), or any other scheme mmengine's
    ``CheckpointLoader`` knows (``open-mmlab://``, ``torchvision://``...)."""
    name = str(filename)
    if name.startswith(('http://', 'https://')):
        return load_checkpoint_url(name, map_location=map_location)
    if osp.isfile(osp.expanduser(name)) or '://' not in name:
        return load_checkpoint_file(name, map_location=map_location)
    return CheckpointLoader.load_checkpoint(name, map_location=map_location)


def load_pretrained(model: nn.Module, filename: str, map_location: str = 'cpu',
                    prefix: Optional[str] = None, logger: str = 'current',
                    strict: bool = True) -> Tuple[List[str], List[str]]:
    """Load a checkpoint file into ``model`` (see the module docstring).

    Args:
        model: The backbone.
        filename: Path or URL of the checkpoint.
        map_location: As ``torch.load``'s.
        prefix: Keep only keys with this prefix, stripped (default
            ``backbone.`` when present).
        logger: Where the key report goes.
        strict: Raise ValueError when backbone keys that are not expected to
            be missing (classifier keys, absent layer scale) do not load.
            With False, they keep their initial value with a warning.

    Returns:
        ``(missing_keys, unexpected_keys)``.
    """
    checkpoint = read_pretrained(filename, map_location=map_location)
    weights = strip_prefixes(tensors(find_weights(checkpoint)[1]), prefix)
    model_state = model.state_dict()
    check_shapes(weights, model_state)
    model_keys = list(model_state)
    _, unexpected, missing = compare_keys(weights, model_state)
    has_layer_scale = any(k.endswith(LAYER_SCALE_SUFFIXES) for k in weights)
    if strict:
        check_match(filename, checkpoint, weights, model_keys, missing, unexpected,
                    has_layer_scale)
    result = model.load_state_dict(weights, strict=False)
    loaded = len(weights) - len(result.unexpected_keys)
    print_log(f'InternImage: loaded {loaded} tensors from {filename}', logger=logger)
    log_key_report(result.missing_keys, result.unexpected_keys, logger=logger,
                   checkpoint_has_layer_scale=has_layer_scale)
    return list(result.missing_keys), list(result.unexpected_keys)
