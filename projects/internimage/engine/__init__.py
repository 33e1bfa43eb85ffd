"""Training-engine extensions registered with mmengine's root registries
(found from the mmdet and mmseg scopes too).

- :class:`RNGStateHook`: generator states in checkpoints, for exact resume.
- :class:`AtomicLocalBackend`: the ``local_atomic`` file backend, which
  writes checkpoints to a temporary file and renames it.
"""
from .atomic_backend import AtomicLocalBackend, atomic_write
from .rng_state_hook import CHECKPOINT_KEY, RNGStateHook, get_rng_state, set_rng_state

__all__ = ['AtomicLocalBackend', 'atomic_write', 'RNGStateHook', 'CHECKPOINT_KEY', 'get_rng_state', 'set_rng_state']
