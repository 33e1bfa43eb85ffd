"""Where a loaded checkpoint keeps its model weights, and how they compare
with a model: the one home of both rules for the project's readers (the safe
file loader, ``init_cfg`` Pretrained loading, the strict runner and the
reference-format converters).

:func:`find_weights` looks, in this order, under

1. ``state_dict``: what mmengine, mmdet and mmseg write (the reference's
   detection and segmentation checkpoints too);
2. ``model``: the reference's classification checkpoints;
3. the top level: a bare state dict (``torch.save(model.state_dict())``).

A key counts only when its value is a dict, so a checkpoint whose
``state_dict`` is something else falls through to the next rule.
"""
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

import torch

#: The keys a checkpoint may keep its weights under, in the order they are
#: looked for; a checkpoint with none of them holds its weights at the top level.
WEIGHTS_KEYS = ('state_dict', 'model')


def find_weights(checkpoint: Any) -> Tuple[Optional[str], Mapping]:
    """The model weights of a loaded checkpoint (see the module docstring).

    Args:
        checkpoint: What ``torch.load`` returned.

    Returns:
        ``(key, weights)``: the key of :data:`WEIGHTS_KEYS` they are under,
        or None for the top level, and the weights as stored (entries that
        are not tensors included).

    Raises:
        TypeError: ``checkpoint`` is not a dict.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'a checkpoint must be a dict, got {type(checkpoint).__name__}')
    for key in WEIGHTS_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            return key, checkpoint[key]
    return None, checkpoint


def tensors(weights: Mapping) -> Dict[str, torch.Tensor]:
    """The tensor entries of ``weights`` (other values skipped).

    Args:
        weights: A state dict as stored, e.g. from :func:`find_weights`.
    """
    return {k: v for k, v in weights.items() if isinstance(v, torch.Tensor)}


def shape_of(value: Any) -> Tuple[int, ...]:
    """The shape of a tensor; ``()`` for anything else."""
    return tuple(getattr(value, 'shape', ()))


class KeyComparison(NamedTuple):
    """How a checkpoint's weights meet a model's ``state_dict``.

    Attributes:
        shapes: ``key: checkpoint (..) vs model (..)`` for every key both
            have with different shapes, in the checkpoint's order.
        unexpected: The checkpoint's keys the model lacks, in its order.
        missing: The model's keys the checkpoint lacks, in the model's order.
    """
    shapes: List[str]
    unexpected: List[str]
    missing: List[str]


def compare_keys(weights: Mapping, model_state: Mapping) -> KeyComparison:
    """Compare a checkpoint's keys and shapes with a model's.

    Args:
        weights: The checkpoint's weights (key -> tensor).
        model_state: The model's ``state_dict()``.
    """
    shapes = [f'{k}: checkpoint {shape_of(v)} vs model {shape_of(model_state[k])}'
              for k, v in weights.items()
              if k in model_state and shape_of(v) != shape_of(model_state[k])]
    unexpected = [k for k in weights if k not in model_state]
    missing = [k for k in model_state if k not in weights]
    return KeyComparison(shapes, unexpected, missing)


def first_of(items: Iterable[str], shown: int = 5, sep: str = ', ') -> str:
    """The first ``shown`` of ``items`` joined by ``sep``, then how many more.

    Args:
        items: Texts (keys, ``key: ...`` lines).
        shown: How many to name.
        sep: The separator.
    """
    items = list(items)
    more = f'{sep}... ({len(items) - shown} more)' if len(items) > shown else ''
    return sep.join(items[:shown]) + more


__all__ = ['WEIGHTS_KEYS', 'find_weights', 'tensors', 'shape_of', 'KeyComparison',
           'compare_keys', 'first_of']
