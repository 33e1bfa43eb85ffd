"""``CPUDistributedDataParallel``: data-parallel training on CPU processes.

mmengine's ``Runner.wrap_model`` builds ``model_wrapper_cfg`` with
``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` refuses for a
module on the CPU, and ``SyncBatchNorm`` refuses CPU tensors. This wrapper,
registered in mmengine's ``MODEL_WRAPPERS`` (which the mmdet and mmseg
registries inherit), drops the device ids and turns SyncBN layers into BN.

The tools select it for launched runs on machines without CUDA::

    model_wrapper_cfg = dict(type='CPUDistributedDataParallel',
                             broadcast_buffers=False)
"""
from typing import Any, Optional, Sequence

from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

__all__ = ['CPUDistributedDataParallel']


@MODEL_WRAPPERS.register_module(force=True)
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU processes (gloo backend).

    Args:
        module (nn.Module): The model to wrap. Its ``SyncBatchNorm`` layers are
            replaced by ``BatchNorm`` (synchronised statistics need a GPU).
        device_ids (Sequence[int], optional): Ignored: DDP of a CPU module
            takes no device ids. Accepted because ``Runner.wrap_model`` passes
            them.
        **kwargs: The other arguments of ``MMDistributedDataParallel``
            (``broadcast_buffers``, ``find_unused_parameters``, ...).
    """

    def __init__(self,
                 module: nn.Module,
                 device_ids: Optional[Sequence[int]] = None,
                 **kwargs: Any) -> None:
        super().__init__(
            module=revert_sync_batchnorm(module), device_ids=None, **kwargs)
