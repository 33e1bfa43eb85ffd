"""Reference checkpoints trained with mmdet 2.x's EMA hook (Cascade 3x).

mmdet 2.x's ``ExpMomentumEMAHook`` keeps the moving average in extra model
buffers, one per ``state_dict`` entry ``name``, called ``'ema_' +
name.replace('.', '_')``, and swaps them with the weights before each
evaluation and checkpoint. A checkpoint written this way therefore holds
the averaged weights under the usual names (what the published numbers
were measured with) and the raw training weights under the ``ema_*``
names. :func:`drop_ema_copies` drops the ``ema_*`` copies (the
checkpoint loaders do so before detecting a reference layout); the rest
loads strictly. An ``ema_*`` key that does not shadow another key of the
file is kept, so a strict load still reports it.
"""
from typing import Dict, List, Mapping

import torch

StateDict = Mapping[str, torch.Tensor]

PREFIX = 'ema_'


def ema_copies(state_dict: StateDict) -> List[str]:
    """The keys of ``state_dict`` that are mmdet 2.x EMA copies of another
    key (``'ema_' + key.replace('.', '_')``)."""
    names = {PREFIX + key.replace('.', '_') for key in state_dict if not key.startswith(PREFIX)}
    return [key for key in state_dict if key in names]


def drop_ema_copies(state_dict: StateDict) -> Dict[str, torch.Tensor]:
    """``state_dict`` without its EMA copies (same order, same tensors).

    Args:
        state_dict: A reference checkpoint's ``state_dict``.
    """
    drop = set(ema_copies(state_dict))
    return {key: value for key, value in state_dict.items() if key not in drop}


__all__ = ['drop_ema_copies', 'ema_copies']
