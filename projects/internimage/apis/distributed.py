"""Distributed set-up for the tools, with a CPU-only (gloo) path.

On machines with CUDA nothing changes: the Runner initialises the process
group itself (``env_cfg.dist_cfg``, nccl) and wraps the model in
``MMDistributedDataParallel`` on the local GPU.

Without CUDA, mmengine's path fails twice: ``init_dist`` calls
``torch.cuda.set_device`` and ``Runner.wrap_model`` passes
``device_ids=[LOCAL_RANK]`` to DDP, which DDP refuses for CPU modules;
and ``SyncBatchNorm`` refuses CPU tensors in a process group. So, before the
Runner is built, :func:`setup_distributed`

* exports the rank variables of the slurm and mpi launchers for ``env://``;
* initialises the default process group with gloo (``Runner.setup_env``
  skips ``init_dist`` when a group already exists) and records
  ``env_cfg.dist_cfg.backend='gloo'``;
* sets ``model_wrapper_cfg`` to ``CPUDistributedDataParallel``
  (``projects.internimage.engine``), which reverts SyncBN to BN and wraps
  without device ids;

and :func:`teardown_distributed` closes that group at the end (gloo aborts
the interpreter's exit otherwise).
"""
import ctypes
import datetime
import os
import signal
import subprocess
import sys
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ['setup_distributed', 'teardown_distributed', 'die_with_parent']

#: whether this process created the default process group (CPU path)
_OWN_GROUP = False


def _export_rank_env(launcher: str) -> None:
    """Fill RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* for ``env://``."""
    env = os.environ
    if launcher == 'slurm':
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env['SLURM_LOCALID']
        if 'MASTER_ADDR' not in env:
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1')
        env.setdefault('MASTER_PORT', env.get('PORT', '29500'))
    elif launcher == 'mpi':
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = env['OMPI_COMM_WORLD_LOCAL_RANK']
        env.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in env:
            raise KeyError('the mpi launcher needs MASTER_ADDR')
    elif launcher != 'pytorch':
        raise ValueError(f'unknown launcher {launcher!r}')


#: prctl's option that sets the signal a process gets when its parent exits
PR_SET_PDEATHSIG = 1
#: Exported by ``tools/run_torchrun.sh``: its pid, torchrun's parent.
LAUNCHER_PID_ENV = 'INTERNIMAGE_LAUNCHER_PID'


def _parent_of(pid: int) -> Optional[int]:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits.

    A worker of ``tools/dist_train.sh`` (``prctl(PR_SET_PDEATHSIG)``): if
    torchrun is killed (SIGKILL, which it cannot forward), its workers stop
    instead of training on as orphans. ``tools/run_torchrun.sh`` does the same
    for torchrun itself (``setpriv --pdeathsig``).

    Args:
        sig: The signal (default SIGTERM).

    Returns:
        Whether it is set (Linux only). If the parent is already gone
        (torchrun killed while this worker started: under
        ``tools/run_torchrun.sh``, whose pid is in
        :data:`LAUNCHER_PID_ENV`, the parent's parent is not the launcher
        any more), ``sig`` is sent at once.
    """
    if not sys.platform.startswith('linux'):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    launcher = os.environ.get(LAUNCHER_PID_ENV, '')
    orphaned = os.getppid() != parent or (
        launcher.isdigit() and _parent_of(os.getppid()) != int(launcher))
    if orphaned:  # the parent exited before prctl took effect
        os.kill(os.getpid(), sig)
    return True


def setup_distributed(cfg) -> None:
    """Prepare ``cfg`` (and the process group) for the Runner.

    A no-op without a launcher or when CUDA is available; see the module
    docstring.

    Args:
        cfg (mmengine.Config): The config (``launcher``, ``env_cfg``,
            ``model_wrapper_cfg`` are read and changed).
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    from mmengine.model import MMDistributedDataParallel
    _export_rank_env(launcher)
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    global _OWN_GROUP
    if not dist.is_initialized():
        _OWN_GROUP = True
        timeout: Optional[int] = dist_cfg.get('timeout', None)
        kwargs = {}
        if timeout is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend='gloo', init_method='env://',
                                **kwargs)
    wrapper = cfg.get('model_wrapper_cfg', None) or dict(
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type', 'MMDistributedDataParallel') in (
            'MMDistributedDataParallel', MMDistributedDataParallel):
        wrapper['type'] = 'CPUDistributedDataParallel'
    cfg.model_wrapper_cfg = wrapper


def teardown_distributed() -> None:
    """Destroy the process group :func:`setup_distributed` created."""
    global _OWN_GROUP
    if _OWN_GROUP and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _OWN_GROUP = False
