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
import weakref
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator, List, Optional, Sequence

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


class _AutocastSwitch:
    """Forward hooks of a module that run its forward under bfloat16 autocast
    while :attr:`on` is set and cast its bfloat16 outputs to float32.

    Hooks (not a replaced ``forward``) keep a deep copy of the module
    computing with its own weights; an instance of this class (not a
    closure) keeps the module picklable.
    """

    def __init__(self, on: bool = False) -> None:
        self.on = on
        self._entered: List[Optional[torch.autocast]] = []

    def attach(self, module: nn.Module) -> List[Any]:
        """Register the hooks on ``module``; returns their handles."""
        return [module.register_forward_pre_hook(self.before),
                module.register_forward_hook(self.after, prepend=True, always_call=True)]

    def before(self, module: nn.Module, args: Any) -> None:
        context = torch.autocast(device_type='cpu', dtype=torch.bfloat16) if self.on else None
        if context is not None:
            context.__enter__()
        self._entered.append(context)

    def after(self, module: nn.Module, args: Any, output: Any) -> Any:
        context = self._entered.pop()
        if context is None:
            return None  # the output as it is
        context.__exit__(None, None, None)
        return _to_float32(output)


@contextmanager
def autocast_modules(model: nn.Module,
                     names: Optional[Sequence[str]] = None) -> Iterator[None]:
    """Run ``model`` (or its submodules ``names``) under bfloat16 CPU autocast.

    With ``names``, each named submodule's forward runs under autocast and
    returns float32 tensors, so the rest of the model sees float32 as usual;
    the modules are left as they were on exit.

    Args:
        model (nn.Module): The model (model wrappers and TTA models are
            unwrapped).
        names (Sequence[str], optional): Dotted submodule names, e.g.
            ``['backbone', 'neck']``. None: everything inside the context.

    Raises:
        ValueError: If the model has no submodule of one of the ``names``.
    """
    if names is None:
        with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            yield
        return
    switch = _AutocastSwitch(on=True)
    handles = [h for module in _resolve(model, names) for h in switch.attach(module)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@OPTIM_WRAPPERS.register_module(force=True)
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to bfloat16 on CPU.

    The named ``autocast_modules`` get their autocast hooks once, at the
    first ``optim_context``; they autocast only inside ``optim_context``
    (the training forward), so validation and testing run in float32.

    Args:
        autocast_modules (Sequence[str], optional): Submodules of the model
            whose forward runs under autocast (their outputs are cast back to
            float32), e.g. ``['backbone', 'neck']`` for detectors, whose
            mmcv ops take float32 only. None: the whole forward pass.
        **kwargs: The arguments of ``OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``). ``AmpOptimWrapper``'s
            ``loss_scale`` and ``dtype`` are refused: bfloat16, the CPU
            autocast type, needs no loss scaling and is the only type.

    Raises:
        ValueError: If ``loss_scale`` or ``dtype`` is given.
    """

    def __init__(self,
                 autocast_modules: Optional[Sequence[str]] = None,
                 **kwargs: Any) -> None:
        for key, why in (('loss_scale', 'bfloat16 autocast needs no loss scaling'),
                         ('dtype', 'it autocasts to bfloat16, the CPU autocast type')):
            if key in kwargs:
                raise ValueError(f'CPUAmpOptimWrapper takes no {key} ({why}): remove '
                                 f'optim_wrapper.{key}')
        super().__init__(**kwargs)
        self.autocast_modules = (None if autocast_modules is None else
                                 list(autocast_modules))
        self._switch = _AutocastSwitch()
        self._hooked: 'weakref.WeakSet[nn.Module]' = weakref.WeakSet()

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient accumulation context of ``OptimWrapper`` plus bfloat16
        autocast of the model or of its ``autocast_modules``.

        Args:
            model (nn.Module): The model being trained.
        """
        with super().optim_context(model):
            if self.autocast_modules is None:
                with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
                    yield
                return
            for module in _resolve(model, self.autocast_modules):
                if module not in self._hooked:  # once per module
                    self._switch.attach(module)
                    self._hooked.add(module)
            self._switch.on = True
            try:
                yield
            finally:
                self._switch.on = False


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
