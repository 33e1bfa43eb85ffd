"""Training-engine extensions, registered with mmengine's root registries
(found from the mmdet and mmseg scopes too).

- :class:`InternImageLayerDecayOptimizerConstructor`: layer-wise lr decay
  (also under the reference's name ``CustomLayerDecayOptimizerConstructor``).
- :class:`RNGStateHook`: generator states in checkpoints, for exact resume.
- :class:`AtomicCheckpointHook`: the checkpoint hook of every config:
  writes (atomically), then updates ``last_checkpoint``, then removes old
  checkpoints; cleans up after killed writers; resolves ``--resume``.
- :class:`AtomicLocalBackend`: the ``local_atomic`` file backend, which
  writes checkpoints to a temporary file and renames it.
- :class:`CPUAmpOptimWrapper` and :class:`CPUAutocastHook`: bfloat16
  autocast on the CPU (``--amp`` without CUDA).
- :class:`CPUDistributedDataParallel`: data-parallel training of CPU
  processes (gloo).
"""
from .atomic_backend import AtomicLocalBackend, atomic_write
from .checkpoint_hook import AtomicCheckpointHook, find_resume_checkpoint
from .cpu_amp import CPUAmpOptimWrapper, CPUAutocastHook, autocast_modules
from .cpu_ddp import CPUDistributedDataParallel
from .layer_decay import InternImageLayerDecayOptimizerConstructor
from .rng_state_hook import CHECKPOINT_KEY, RNGStateHook, get_rng_state, set_rng_state

__all__ = ['AtomicCheckpointHook', 'find_resume_checkpoint', 'AtomicLocalBackend', 'atomic_write',
           'CPUAmpOptimWrapper', 'CPUAutocastHook',
           'autocast_modules', 'CPUDistributedDataParallel',
           'InternImageLayerDecayOptimizerConstructor', 'RNGStateHook', 'CHECKPOINT_KEY',
           'get_rng_state', 'set_rng_state']
