"""Exact resume: the random generators' states travel with the checkpoint.

mmengine checkpoints store the weights, the optimizer, the schedulers and the
message hub, but no generator state: a run resumed after epoch N restarts the
generators from the seed, and from epoch N + 1 on draws other dropout masks,
drop-path decisions and augmentations than the uninterrupted run.

:class:`RNGStateHook` stores every rank's python ``random``, numpy and torch
(CPU, and the current CUDA device's where CUDA is initialised) generator
states in the checkpoint, under :data:`CHECKPOINT_KEY`, as a list indexed by
rank, and on resume each rank restores its own entry. With
``randomness=dict(seed=..., deterministic=True)``, an interrupted and resumed
run then gives the same weights, optimizer state and losses as the
uninterrupted one.

When the states are taken and restored:

* taken (gathered from all ranks) only when a checkpoint will be written:
  after a training epoch or iteration at which a ``CheckpointHook`` saves
  (its interval, ``save_begin`` and ``save_last``), and before a validation
  whose results a ``CheckpointHook`` with ``save_best`` may save. Only rank 0
  writes the checkpoint (``Runner.save_checkpoint`` runs on rank 0 alone), so
  the ranks' states are gathered then, with every rank, not at the save;
* validation leaves the training generators as it found them (states saved
  before it, restored after it): the resumed run does not repeat the
  validation that followed the saved epoch, so it must not have consumed
  anything;
* restored at the first ``before_train_epoch`` of a resumed run (an
  ``iter > 0`` after loading; a plain ``load_from`` restores nothing), before
  the data loader of that epoch draws its seed. ``IterBasedTrainLoop``
  replays the data loader over the trained iterations first (mmengine skips
  data that way); the hook does that replay itself, then restores the
  states, so the replay's draws do not count.

Limits: data-loader workers own generators the main process cannot read.
Resume is exact with ``num_workers=0``, and with ``persistent_workers=False``
(workers are re-created and re-seeded each epoch, the same way in both
runs); persistent workers restart from their seeds. A checkpoint written with another number of
ranks, or without the states, restores nothing, with a warning.
"""
import logging
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['RNGStateHook', 'CHECKPOINT_KEY', 'get_rng_state', 'set_rng_state']

#: Key of the per-rank states in the checkpoint dict.
CHECKPOINT_KEY = 'rng_states'


def get_rng_state() -> Dict[str, Any]:
    """This process's generator states, in types a weights-only load accepts
    (tensors, ints, floats, strings, tuples).

    Returns:
        ``{'python', 'numpy', 'torch'[, 'cuda']}``.
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        'python': random.getstate(),
        'numpy': (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(gauss)),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned.

    Args:
        state: One rank's states.
    """
    random.setstate(state['python'])
    name, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


class _AlreadyReplayed:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator`` while the loop
    skips the ``skips`` batches the hook already replayed: returns None that
    many times, then puts the real iterator back."""

    def __init__(self, loop: Any, iterator: Any, skips: int) -> None:
        self.loop, self.iterator, self.skips = loop, iterator, skips

    def __iter__(self) -> '_AlreadyReplayed':
        return self

    def __next__(self) -> None:
        self.skips -= 1
        if self.skips <= 0:
            self.loop.dataloader_iterator = self.iterator
        return None


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store every rank's generator states in checkpoints and restore them on
    resume (see the module docstring).

    Use it in a config with ``custom_hooks=[dict(type='RNGStateHook')]``.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._gathered: Optional[List[Dict[str, Any]]] = None
        self._pending: Optional[Dict[str, Any]] = None
        self._before_val: Optional[Dict[str, Any]] = None

    # -- taking -----------------------------------------------------------
    def _gather(self) -> None:
        states = [get_rng_state()]
        if get_dist_info()[1] > 1:
            states = all_gather_object(states[0])
        self._gathered = states

    @staticmethod
    def _checkpoint_hooks(runner) -> List[CheckpointHook]:
        return [h for h in runner.hooks if isinstance(h, CheckpointHook)]

    def after_train_epoch(self, runner) -> None:
        """Gather the states when a by-epoch checkpoint is saved now."""
        if any(h.by_epoch and (h.every_n_epochs(runner, h.interval, h.save_begin)
                               or (h.save_last and h.is_last_train_epoch(runner)))
               for h in self._checkpoint_hooks(runner)):
            self._gather()

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Gather the states when a by-iteration checkpoint is saved now."""
        if any(not h.by_epoch and (h.every_n_train_iters(runner, h.interval, h.save_begin)
                                   or (h.save_last and h.is_last_train_iter(runner)))
               for h in self._checkpoint_hooks(runner)):
            self._gather()

    def before_val(self, runner) -> None:
        """Keep the training states; gather them when a best checkpoint may
        follow the validation."""
        self._before_val = get_rng_state()
        if any(h.save_best for h in self._checkpoint_hooks(runner)):
            self._gather()

    def after_val(self, runner) -> None:
        """Give training back the states validation found."""
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the gathered states (this rank's alone when none were)."""
        checkpoint[CHECKPOINT_KEY] = self._gathered or [get_rng_state()]

    # -- restoring --------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Pick this rank's states; they are restored when training starts."""
        states = checkpoint.get(CHECKPOINT_KEY)
        rank, world_size = get_dist_info()
        self._pending = None
        if states is None:
            print_log('RNGStateHook: the checkpoint holds no generator states; a resumed '
                      'run restarts them from the seed (not an exact resume)',
                      logger='current', level=logging.WARNING)
        elif len(states) != world_size:
            print_log(f'RNGStateHook: the checkpoint holds generator states of '
                      f'{len(states)} rank(s), this run has {world_size}: not restored',
                      logger='current', level=logging.WARNING)
        else:
            self._pending = states[rank]

    def before_train_epoch(self, runner) -> None:
        """Restore the pending states of a resumed run."""
        state, self._pending = self._pending, None
        if state is None or runner.iter == 0:
            return  # not a resume (load_from) or nothing to restore
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is not None:
            # IterBasedTrainLoop: replay the trained batches now, before the
            # restore, and let the loop's own replay skip nothing.
            for _ in range(runner.iter):
                next(iterator)
            loop.dataloader_iterator = _AlreadyReplayed(loop, iterator, runner.iter)
        set_rng_state(state)
