"""Refuse a ``load_from`` checkpoint that does not fit the model exactly.

mmengine's ``Runner`` loads ``load_from`` (and ``tools/test.py CONFIG CKPT``)
with ``strict=False``: a checkpoint of another family or variant (a Mask
R-CNN checkpoint for a Cascade config, InternImage-S weights for a T
config) loads every tensor whose name and shape happen to match, skips the
rest with a warning, and the run goes on with a half-loaded model.

:class:`StrictLoadRunner` (select it with ``runner_type =
'StrictLoadRunner'`` in a config) checks the checkpoint's keys and shapes
against the model *before* copying anything, and raises a ``ValueError``
naming the first mismatching keys and shapes; nothing is loaded then. A
checkpoint that fits loads with ``strict=True``. Resuming goes through the
same check. The weights are found where :func:`.weights.find_weights` finds
them (``state_dict``, ``model``, the top level) and compared key by key and
shape by shape with :func:`.weights.compare_keys`; reference-format
checkpoints (e.g. the reference's DINO) are converted by the checkpoint
loader before the check.

To fine-tune on purpose from a checkpoint that fits only in part (e.g.
another number of classes), use mmengine's plain runner:
``--cfg-options runner_type=Runner``.
"""
import re
from typing import Callable, List, Mapping, Sequence, Tuple, Union

from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from torch import nn

from .weights import compare_keys, find_weights, first_of, shape_of


def revise(keys: Sequence[str], revise_keys: Sequence[Tuple[str, str]]) -> List[str]:
    """``keys`` after mmengine's ``revise_keys`` substitutions."""
    out = []
    for key in keys:
        for pattern, repl in revise_keys:
            key = re.sub(pattern, repl, key)
        out.append(key)
    return out


def checkpoint_mismatch(model: nn.Module, weights: Mapping,
                        revise_keys: Sequence[Tuple[str, str]] = ()) -> str:
    """How ``weights`` fail to fit ``model`` exactly, or ``''`` if they fit.

    Args:
        model: The model to load into.
        weights: The checkpoint's ``state_dict``.
        revise_keys: ``(pattern, replacement)`` applied to the checkpoint's
            keys first, as mmengine does (default: none).

    Returns:
        One paragraph naming the first keys of a different shape (with both
        shapes), the first keys the model lacks and the first keys the
        checkpoint lacks, with their counts.
    """
    own = model.state_dict()
    theirs = dict(zip(revise(list(weights), revise_keys), weights.values()))
    shapes, unexpected, missing = compare_keys(theirs, own)
    parts = []
    if shapes:
        parts.append(f'{len(shapes)} tensor(s) of a different shape: {first_of(shapes)}')
    if unexpected:
        parts.append(f'{len(unexpected)} key(s) not in the model: '
                     + first_of(f'{k} {shape_of(theirs[k])}' for k in unexpected))
    if missing:
        parts.append(f'{len(missing)} model key(s) not in the checkpoint: '
                     + first_of(f'{k} {shape_of(own[k])}' for k in missing))
    return '; '.join(parts)


def check_checkpoint_fits(model: nn.Module, checkpoint: Mapping, filename: str,
                          revise_keys: Sequence[Tuple[str, str]] = ()) -> None:
    """Raise ``ValueError`` unless ``checkpoint`` fits ``model`` exactly.

    Args:
        model: The model to load into (unwrapped).
        checkpoint: What the checkpoint loader returned.
        filename: Named in the error.
        revise_keys: As :func:`checkpoint_mismatch`.
    """
    weights = find_weights(checkpoint)[1]
    problem = checkpoint_mismatch(model, weights, revise_keys)
    if problem:
        raise ValueError(
            f'checkpoint {filename} does not fit the model of this config ({len(weights)} '
            f'checkpoint tensors, {len(model.state_dict())} model tensors; wrong model family '
            f'or variant?): {problem}. Nothing was loaded. To load a partly fitting '
            'checkpoint on purpose (fine-tuning to other classes), use '
            '--cfg-options runner_type=Runner.')


def unwrap(model: nn.Module) -> nn.Module:
    """The model the checkpoint's keys refer to: inside DDP-style wrappers
    and test-time-augmentation models (``--tta``), as mmengine loads it."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


@RUNNERS.register_module()
class StrictLoadRunner(Runner):
    """mmengine's ``Runner`` that loads only checkpoints fitting the model
    exactly (see the module docstring); otherwise identical."""

    def load_checkpoint(self, filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = True,
                        revise_keys: list = [(r'^module\.', '')]):  # noqa: B006 (mmengine's)
        """Load ``filename`` into the model after checking that it fits.

        Args:
            filename: A local path or URL (any scheme mmengine reads).
            map_location: Where to map the tensors (as ``Runner``).
            strict: Ignored: loading is always strict here.
            revise_keys: ``(pattern, replacement)`` applied to the keys
                (default: strip a DDP ``module.`` prefix).

        Raises:
            ValueError: The checkpoint does not fit; the model is unchanged.
        """
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        # before the hooks: EMAHook copies the weights into its EMA model there
        check_checkpoint_fits(unwrap(model), checkpoint, filename, revise_keys)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        # the weights that were checked (mmengine itself would read only
        # `state_dict` or the top level)
        weights = find_weights(checkpoint)[1]
        _load_checkpoint_to_model(model, {'state_dict': weights}, True, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename} (all {len(weights)} tensors fit '
                         'the model)')
        return checkpoint


__all__ = ['StrictLoadRunner', 'check_checkpoint_fits', 'checkpoint_mismatch', 'unwrap']
