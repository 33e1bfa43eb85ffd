"""Mixed precision on the CPU (bfloat16 autocast) for mmengine runs.

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU
(``AmpOptimizerWrapper is only available training on gpu``). On the CPU,
``torch.autocast`` runs in bfloat16, which has float32's exponent range, so no
loss scaling is needed: only the forward pass has to run under autocast.

mmcv's CPU kernels (``nms``, ``RoIAlign``, ...) take float32 only, so for
detectors only some submodules can run in bfloat16; the outputs of an
autocast submodule are cast back to float32 for the modules after it. Two
registered pieces, selected by the tools for ``--amp`` without CUDA:

* :class:`CPUAmpOptimWrapper` (training): the forward pass of the whole model,
  or of the named submodules, under autocast::

      optim_wrapper = dict(type='CPUAmpOptimWrapper', optimizer=...,
                           autocast_modules=['backbone', 'neck'])

* :class:`CPUAutocastHook` (testing): the same for the test (and validation)
  loops::

      custom_hooks = [dict(type='CPUAutocastHook', modules=['backbone', 'neck'])]
"""
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator, List, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPERS
from torch import nn

__all__ = ['CPUAmpOptimWrapper', 'CPUAutocastHook', 'autocast_modules']


def _to_float32(value: Any) -> Any:
    """``value`` with every bfloat16 tensor in it (nested in tuples, lists
    and dicts) cast to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype == torch.bfloat16 else value
    if isinstance(value, tuple) and hasattr(value, '_fields'):  # namedtuple
        return type(value)(*(_to_float32(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(v) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _to_float32(v)) for k, v in value.items())
    return value


def _resolve(model: nn.Module, names: Sequence[str]) -> List[nn.Module]:
    """The submodules ``names`` (dotted paths) of ``model``, unwrapped from
    DDP-like wrappers and TTA models; a clear error for a name it lacks."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    modules = []
    for name in names:
        try:
            modules.append(model.get_submodule(name))
        except AttributeError:
            raise ValueError(
                f'autocast module {name!r} not found in '
                f'{type(model).__name__}: its top-level submodules are '
                f'{[n for n, _ in model.named_children()]}') from None
    return modules


@contextmanager
def autocast_modules(model: nn.Module,
                     names: Optional[Sequence[str]] = None,
                     dtype: torch.dtype = torch.bfloat16) -> Iterator[None]:
    """Run ``model`` (or its submodules ``names``) under CPU autocast.

    With ``names``, each named submodule's forward runs under autocast and
    returns float32 tensors, so the rest of the model sees float32 as usual;
    the forwards are restored on exit.

    Args:
        model (nn.Module): The model (model wrappers and TTA models are
            unwrapped).
        names (Sequence[str], optional): Dotted submodule names, e.g.
            ``['backbone', 'neck']``. None: everything inside the context.
        dtype (torch.dtype): The autocast dtype (bfloat16 on the CPU).

    Raises:
        ValueError: If the model has no submodule of one of the ``names``.
    """
    if names is None:
        with torch.autocast(device_type='cpu', dtype=dtype):
            yield
        return
    modules = _resolve(model, names)
    patched = []
    for module in modules:
        if 'forward' in vars(module):  # already patched (nested contexts)
            continue
        forward = module.forward

        def autocast_forward(*args, _forward=forward, **kwargs):
            with torch.autocast(device_type='cpu', dtype=dtype):
                out = _forward(*args, **kwargs)
            return _to_float32(out)

        module.forward = autocast_forward
        patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


@OPTIM_WRAPPERS.register_module(force=True)
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to bfloat16 on CPU.

    Args:
        autocast_modules (Sequence[str], optional): Submodules of the model
            whose forward runs under autocast (their outputs are cast back to
            float32), e.g. ``['backbone', 'neck']`` for detectors, whose
            mmcv ops take float32 only. None: the whole forward pass.
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
                 autocast_modules: Optional[Sequence[str]] = None,
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
        self.autocast_modules = (None if autocast_modules is None else
                                 list(autocast_modules))

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient accumulation context of ``OptimWrapper`` plus bfloat16
        autocast of the model or of its ``autocast_modules``.

        Args:
            model (nn.Module): The model being trained.
        """
        with super().optim_context(model), autocast_modules(
                model, self.autocast_modules, self.cast_dtype):
            yield


@HOOKS.register_module(force=True)
class CPUAutocastHook(Hook):
    """Run the test and validation loops under bfloat16 autocast on CPU.

    Args:
        modules (Sequence[str], optional): Submodules to autocast (outputs
            cast back to float32); None: the whole model.
    """

    priority = 'VERY_LOW'

    def __init__(self, modules: Optional[Sequence[str]] = None) -> None:
        self.modules = None if modules is None else list(modules)
        self._stack: Optional[ExitStack] = None

    def _enter(self, runner) -> None:
        self._exit(runner)
        self._stack = ExitStack()
        self._stack.enter_context(autocast_modules(runner.model,
                                                   self.modules))

    def _exit(self, runner) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def before_test_epoch(self, runner) -> None:
        self._enter(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._exit(runner)

    def before_val_epoch(self, runner) -> None:
        self._enter(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._exit(runner)
