"""Small layers with the reference's module nesting (it fixes checkpoint keys).

The helpers are named apart from mmcv's ``build_norm_layer(cfg, num_features)``
and ``build_activation_layer(cfg)``, which take config dicts: these take a
width and a name ('LN'/'BN', 'GELU'/'ReLU'/'SiLU').
"""
import torch
from torch import nn


class ToChannelsLast(nn.Module):
    """(N, C, H, W) -> (N, H, W, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class ToChannelsFirst(nn.Module):
    """(N, H, W, C) -> (N, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


def norm_layer_with_permutes(dim: int, norm_layer: str, in_format: str = 'channels_last',
                     out_format: str = 'channels_last', eps: float = 1e-6) -> nn.Sequential:
    """A norm wrapped in the permutes it needs, as an ``nn.Sequential``.

    'LN' works channels-last and 'BN' channels-first, so the norm's index in
    the Sequential (and thus its checkpoint key) depends on the formats: e.g.
    LN from channels_first to channels_last is ``[permute, LN]`` (key ``.1``).
    """
    for name, fmt in (('in_format', in_format), ('out_format', out_format)):
        if fmt not in ('channels_first', 'channels_last'):
            raise ValueError(f"{name} must be 'channels_first' or 'channels_last', got {fmt!r}")
    layers = []
    if norm_layer == 'LN':
        if in_format == 'channels_first':
            layers.append(ToChannelsLast())
        layers.append(nn.LayerNorm(dim, eps=eps))
        if out_format == 'channels_first':
            layers.append(ToChannelsFirst())
    elif norm_layer == 'BN':
        if in_format == 'channels_last':
            layers.append(ToChannelsFirst())
        layers.append(nn.BatchNorm2d(dim))
        if out_format == 'channels_last':
            layers.append(ToChannelsLast())
    else:
        raise ValueError(f"norm_layer must be 'LN' or 'BN', got {norm_layer!r}")
    return nn.Sequential(*layers)


_ACTIVATIONS = {'GELU': nn.GELU, 'ReLU': nn.ReLU, 'SiLU': nn.SiLU}


def act_layer_by_name(act_layer: str) -> nn.Module:
    """'GELU', 'ReLU' or 'SiLU'."""
    if act_layer not in _ACTIVATIONS:
        raise ValueError(f'act_layer must be one of {sorted(_ACTIVATIONS)}, got {act_layer!r}')
    cls = _ACTIVATIONS[act_layer]
    return cls(inplace=True) if act_layer == 'ReLU' else cls()
