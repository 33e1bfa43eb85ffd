"""CB-InternImage: two InternImage backbones composed as in CBNetV2, the
backbone of the reference's DINO + CB-InternImage-H detector.

The composite (module names are the reference's ``CBInternImage``, so its
checkpoints load with ``strict=True``):

- ``cb_modules.0``, the *assisting* backbone: a whole :class:`InternImage`.
- ``cb_modules.1``, the *lead* backbone: an :class:`InternImage` without a
  stem (no ``patch_embed``: it starts from the assisting backbone's stem
  output), with one per-channel scale per stage, ``gamma0`` ... ``gamma3``,
  initialised to zero.
- ``cb_linears.i.j`` (``j >= 1``): a 1x1 conv from the width of stage
  ``i + j`` to the width of stage ``i``; ``cb_linears.i.0`` is the identity
  (no parameters).

Forward: the assisting backbone runs every stage. Before lead stage ``i``,
its input ``x_i`` (channels-last) becomes::

    x_i + gamma_i * sum_j resize(cb_linears[i][j](a_{i+j}), size(x_i))

with ``a_k`` the assisting backbone's stage-``k`` output and ``resize``
nearest-neighbour (dense higher-level composition: each lead stage receives
every assisting stage of its level and the coarser ones). While the gammas
are zero the two backbones are two plain InternImage runs on the same stem.

Differences from the reference, both outside its working range:

- the reference resizes to sizes it halves from the stem output's (floor),
  which differ from the stage sizes (the downsampling conv rounds up) unless
  the stem output is a multiple of 8, i.e. the padded image a multiple of 32
  (the configs' ``pad_size_divisor``); there it fails, here every size
  works;
- the reference casts the gammas to float16 before the product
  (``gamma.half()``); here they keep their dtype (the difference is the
  float16 rounding of each gamma, a relative 2**-11 at most).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn

from .arch_settings import ARCH_SETTINGS
from .backbone import InternImage

InitCfg = Union[dict, List[dict], None]
OutIndices = Union[Sequence[int], Sequence[Sequence[int]]]

#: The reference's ``out_indices`` of DINO + CB-InternImage-H: all stages of
#: the assisting backbone (the first is then dropped), stages 1-3 of the lead.
REFERENCE_OUT_INDICES = ((0, 1, 2, 3), (1, 2, 3))


def composite_out_indices(out_indices: OutIndices) -> Tuple[int, ...]:
    """The stages both backbones of a :class:`CBInternImage` return.

    Args:
        out_indices: stage indices (the same for both backbones), or the
            reference's pair ``(assisting, lead)``. A pair must name the same
            stages twice, or name one more leading stage for the assisting
            backbone, which the reference drops from its outputs
            (``((0, 1, 2, 3), (1, 2, 3))`` returns stages 1-3 of both).

    Returns:
        The stage indices, as a tuple of ints.

    Raises:
        ValueError: an empty or malformed value, or a pair whose backbones
            would return different stages.
    """
    values = list(out_indices) if isinstance(out_indices, (list, tuple)) else None
    if not values:
        raise ValueError(f'out_indices must be stage indices or a pair of them, got '
                         f'{out_indices!r}')
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return tuple(values)
    if len(values) == 2 and all(isinstance(v, (list, tuple)) for v in values):
        assist, lead = (tuple(v) for v in values)
        if assist == lead or (len(assist) == len(lead) + 1 and assist[1:] == lead):
            return lead
        raise ValueError(f'out_indices={out_indices!r}: both backbones of the composite '
                         f'must return the same stages (the reference form is '
                         f'{REFERENCE_OUT_INDICES}: the assisting list may only have one '
                         'extra leading stage, which is dropped)')
    raise ValueError(f'out_indices must be stage indices or a pair (assisting, lead) of '
                     f'them, got {out_indices!r}')


class CBInternImageBranch(InternImage):
    """One backbone of :class:`CBInternImage`: an :class:`InternImage` that
    may lack its stem and may take the composite inputs of its stages.

    Args:
        with_stem: keep ``patch_embed`` (the assisting backbone); the lead
            backbone has none.
        with_composite_inputs: add the zero-initialised per-stage scales
            ``gamma0`` ... ``gamma{num_stages - 1}`` of the composite inputs.
        **kwargs: :class:`InternImage`'s arguments.
    """

    def __init__(self, with_stem: bool = True, with_composite_inputs: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_composite_inputs = with_composite_inputs
        if with_composite_inputs:
            for i in range(self.num_levels):
                self.register_parameter(
                    f'gamma{i}', nn.Parameter(torch.zeros(self.channels * 2**i)))
        if not with_stem:
            del self.patch_embed

    @property
    def has_stem(self) -> bool:
        """Whether this backbone has its own ``patch_embed``."""
        return hasattr(self, 'patch_embed')

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = ([self.patch_embed] if self.has_stem else []) + [
            self.levels[i] for i in range(self.frozen_stages)]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the stem output, channels-last (N, H/4, W/4, C)."""
        if not self.has_stem:
            raise RuntimeError('this backbone of the composite has no stem: it starts '
                               "from the assisting backbone's stem output")
        return self.pos_drop(self.patch_embed(x))

    def forward_stages(self, x: torch.Tensor,
                       composite_inputs: Optional[Sequence[torch.Tensor]] = None,
                       last: Optional[int] = None) -> List[torch.Tensor]:
        """Run the stages on a stem output.

        Args:
            x: the stem output, channels-last.
            composite_inputs: per stage, a channels-last tensor of the
                stage's input shape, added to the input after scaling by
                ``gamma{i}``; None for none.
            last: the last stage to run (default: all).

        Returns:
            The stage outputs (after the stage norm, before downsampling),
            channels-last, stages ``0 .. last``.
        """
        if composite_inputs is not None and not self.with_composite_inputs:
            raise ValueError('this backbone of the composite takes no composite inputs '
                             '(it has no gamma scales)')
        last = self.num_levels - 1 if last is None else last
        outs = []
        for i, level in enumerate(self.levels):
            if composite_inputs is not None:
                x = x + getattr(self, f'gamma{i}') * composite_inputs[i]
            x, out = level(x)
            outs.append(out)
            if i == last:
                break
        return outs

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """As :meth:`InternImage.forward` (the backbone alone, no composite
        inputs); needs the stem."""
        outs = self.forward_stages(self.forward_stem(x), last=max(self.out_indices))
        return tuple(outs[i].permute(0, 3, 1, 2).contiguous() for i in self.out_indices)


@MODELS.register_module()
class CBInternImage(BaseModule):
    """Composite InternImage backbone (CBNetV2, as the reference's
    ``CBInternImage``): an assisting and a lead InternImage, the assisting
    backbone's stage outputs fed into every lead stage (see the module
    docstring). Registered as ``CBInternImage`` in mmengine's root
    ``MODELS`` (as :class:`InternImage`), which mmdet's registry searches.

    Returns ``(assisting outputs, lead outputs)``: two tuples of NCHW maps,
    one per stage of ``out_indices``. ``CBChannelMapper`` maps both in
    training (``CBDINO`` trains the detector on both) and only the lead's
    at test time.

    Args:
        arch: the variant of both backbones (see :class:`InternImage`; the
            reference's long form, ``arch=None`` with ``channels``,
            ``depths``, ``groups``..., works too).
        out_indices: the stages both backbones return, or the reference's
            pair (see :func:`composite_out_indices`).
        cb_del_stages: the reference's option; only its value 1 (the lead
            backbone has no stem, every stage takes composite inputs) exists.
        cb_zero_init: the reference's option; the gammas start at zero
            (the reference ignores the value; False is refused here).
        init_cfg: a ``Pretrained`` init config of an InternImage checkpoint:
            loaded into the assisting backbone (with :class:`InternImage`'s
            checks), whose stages are then copied into the lead backbone
            (CBNetV2 starts both from the same weights); None for none. The
            published detector loads its whole checkpoint with ``load_from``.
        **kwargs: the other :class:`InternImage` arguments, for both
            backbones (``with_cp``, ``drop_path_rate``, ``core_op``...).

    Raises:
        ValueError: unsupported ``cb_del_stages`` / ``cb_zero_init``, bad
            ``out_indices`` or bad InternImage arguments (named).
    """

    #: The published variants, by name (``InternImage.arch_settings``).
    arch_settings: Dict[str, Dict[str, Any]] = ARCH_SETTINGS

    def __init__(self,
                 arch: Union[str, Dict[str, Any], None] = None,
                 out_indices: OutIndices = (1, 2, 3),
                 cb_del_stages: int = 1,
                 cb_zero_init: bool = True,
                 init_cfg: InitCfg = None,
                 **kwargs: Any) -> None:
        if cb_del_stages != 1:
            raise ValueError(f'cb_del_stages={cb_del_stages!r} is not supported: only the '
                             "reference's 1 (lead backbone without a stem, composite inputs "
                             'at every stage)')
        if cb_zero_init is not True:
            raise ValueError('cb_zero_init must be True: the composite scales (gamma0..3) '
                             'start at zero')
        if kwargs.get('pretrained') is not None:
            raise ValueError("CBInternImage does not take pretrained=...: use init_cfg=dict("
                             "type='Pretrained', checkpoint=...)")
        super().__init__(init_cfg=None)
        self.out_indices = composite_out_indices(out_indices)
        # the assisting backbone computes every stage (the lead takes them all)
        self.cb_modules = nn.ModuleList([
            CBInternImageBranch(arch=arch, out_indices=self.out_indices, init_cfg=init_cfg,
                                **kwargs),
            CBInternImageBranch(arch=arch, out_indices=self.out_indices, init_cfg=None,
                                with_stem=False, with_composite_inputs=True, **kwargs),
        ])
        assist = self.cb_modules[0]
        self.num_levels = assist.num_levels
        self.channels = assist.channels
        self.depths = list(assist.depths)
        self.arch = assist.arch
        widths = [self.channels * 2**i for i in range(self.num_levels)]
        self.cb_linears = nn.ModuleList()
        for i in range(self.num_levels):
            self.cb_linears.append(nn.ModuleList([
                nn.Identity() if j == 0 else nn.Conv2d(widths[i + j], widths[i], 1)
                for j in range(self.num_levels - i)
            ]))
        #: The resolved arguments of the backbones (both alike) and of the composite.
        self.settings: Dict[str, Any] = dict(
            backbone=dict(assist.settings), out_indices=list(self.out_indices),
            cb_del_stages=cb_del_stages, cb_zero_init=cb_zero_init)

    def init_weights(self) -> None:
        """Initialise both backbones from scratch; with a Pretrained
        ``init_cfg``, load it into the assisting backbone and copy its stages
        into the lead one. The connections keep PyTorch's conv initialisation
        and the gammas zero."""
        assist, lead = self.cb_modules
        assist.init_weights()
        lead.init_weights()
        cfgs = assist.init_cfg if isinstance(assist.init_cfg, list) else [assist.init_cfg]
        if any(c and c.get('type') == 'Pretrained' for c in cfgs):
            lead.levels.load_state_dict(assist.levels.state_dict())
        self._is_init = True

    # -- forward --------------------------------------------------------
    def composite_inputs(self, assist_outs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """The composite input of each lead stage (before its gamma).

        Args:
            assist_outs: the assisting backbone's stage outputs,
                channels-last, all stages.

        Returns:
            Per stage ``i``, a channels-last tensor of stage ``i``'s input
            shape: ``sum_j resize(cb_linears[i][j](assist_outs[i + j]))``.
        """
        inputs = []
        for i, convs in enumerate(self.cb_linears):
            size = assist_outs[i].shape[1:3]
            total: Union[int, torch.Tensor] = 0
            for j, conv in enumerate(convs):
                y = conv(assist_outs[i + j].permute(0, 3, 1, 2))
                if y.shape[-2:] != size:
                    y = F.interpolate(y, size=tuple(size), mode='nearest')
                total = total + y.permute(0, 2, 3, 1)
            inputs.append(total)
        return inputs

    def forward(self, x: torch.Tensor
                ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """(N, 3, H, W) -> ``(assisting outputs, lead outputs)``, each a
        tuple of NCHW maps, one per ``out_indices``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'CBInternImage takes (N, 3, H, W) images, got shape '
                             f'{tuple(x.shape)}')
        assist, lead = self.cb_modules
        stem = assist.forward_stem(x)
        assist_outs = assist.forward_stages(stem)
        lead_outs = lead.forward_stages(stem, self.composite_inputs(assist_outs),
                                        last=max(self.out_indices))

        def nchw(outs: List[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
            return tuple(outs[i].permute(0, 3, 1, 2).contiguous() for i in self.out_indices)

        return nchw(assist_outs), nchw(lead_outs)

    # -- layer-wise lr decay ---------------------------------------------
    @property
    def num_layers(self) -> int:
        """The number of blocks of one backbone, ``sum(depths)``."""
        return sum(self.depths)

    def get_layer_depth(self, param_name: str, prefix: str = 'backbone.') -> Tuple[int, int]:
        """The layer id of a parameter, for layer-wise lr decay: the last
        one, ``num_layers + 1``, for every parameter.

        This is what the reference's rule gives the composite: it assigns
        layer ids to names starting with ``backbone.patch_embed`` or
        ``backbone.levels`` only, so every ``backbone.cb_modules.*`` and
        ``backbone.cb_linears.*`` parameter falls into the last id, like the
        head, and trains at the full lr. The published recipe's layer decay
        thus only lowers the lr of what the optimizer constructor puts in
        layer 0 (DINO's level embedding).

        Args:
            param_name: the parameter's name in the whole model.
            prefix: the backbone's prefix in the model's parameter names.

        Returns:
            ``(num_layers + 1, num_layers + 2)``.
        """
        total = self.num_layers + 2
        return total - 1, total


__all__ = ['CBInternImage', 'CBInternImageBranch', 'composite_out_indices',
           'REFERENCE_OUT_INDICES']
