"""``CPUAmpOptimWrapper``: mixed-precision training on the CPU (bfloat16).

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU
(``AmpOptimizerWrapper is only available training on gpu``). On the CPU,
``torch.autocast`` runs in bfloat16, which has float32's exponent range: no
loss scaling is needed, so this wrapper only runs the forward pass (and the
loss) under ``torch.autocast('cpu', dtype=torch.bfloat16)``; the backward
pass and the optimizer step stay as in ``OptimWrapper``. The tools select it
for ``--amp`` on machines without CUDA::

    optim_wrapper = dict(type='CPUAmpOptimWrapper', optimizer=...)
"""
from contextlib import contextmanager
from typing import Any, Iterator, Union

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

__all__ = ['CPUAmpOptimWrapper']


@OPTIM_WRAPPERS.register_module(force=True)
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to bfloat16 on CPU.

    Args:
        dtype (str or torch.dtype): The autocast dtype. Only ``'bfloat16'``
            (the CPU autocast type) is accepted; the argument exists so that
            configs can state it.
        **kwargs: The arguments of ``OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``). ``loss_scale``, which
            ``AmpOptimWrapper`` takes, is refused: bfloat16 needs none.

    Raises:
        ValueError: If ``dtype`` is not bfloat16 or ``loss_scale`` is given.
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs: Any) -> None:
        if 'loss_scale' in kwargs:
            raise ValueError(
                'CPUAmpOptimWrapper takes no loss_scale (bfloat16 autocast '
                'needs no loss scaling): remove optim_wrapper.loss_scale')
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError('CPUAmpOptimWrapper autocasts to bfloat16 only '
                             f'(the CPU autocast type), got dtype={dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient accumulation context of ``OptimWrapper`` plus bfloat16
        autocast on the CPU.

        Args:
            model (nn.Module): The model being trained.
        """
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
