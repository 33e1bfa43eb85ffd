"""Building blocks of the InternImage backbone: stem, MLP, downsampling and
the choice of DCNv3 core op.

Submodule names and nesting follow the reference model, because they are the
checkpoint keys (e.g. ``patch_embed.norm1.1``, ``downsample.norm.1``).
"""
from typing import Type

import torch
from torch import nn

import ops_dcnv3.modules as dcn_modules
from ops_dcnv3.modules import act_layer_by_name, norm_layer_with_permutes

#: ``core_op`` names and the DCNv3 module class each selects.
CORE_OPS = ('DCNv3', 'DCNv3_pytorch')


def get_dcn_class(core_op: str) -> Type[nn.Module]:
    """The ``ops_dcnv3.modules`` class for ``core_op``."""
    if core_op not in CORE_OPS:
        raise ValueError(f'core_op must be one of {list(CORE_OPS)}, got {core_op!r}')
    return getattr(dcn_modules, core_op)


class MLP(nn.Module):
    """fc1 -> act -> dropout -> fc2 -> dropout, channels-last."""

    def __init__(self, in_features: int, hidden_features: int, act_layer: str = 'GELU',
                 drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer_by_name(act_layer)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


class StemLayer(nn.Module):
    """Two stride-2 3x3 convs (3 -> C/2 -> C); NCHW in, NHWC out (stride 4)."""

    def __init__(self, in_chans: int = 3, out_chans: int = 96, act_layer: str = 'GELU',
                 norm_layer: str = 'BN') -> None:
        super().__init__()
        mid = out_chans // 2
        self.conv1 = nn.Conv2d(in_chans, mid, kernel_size=3, stride=2, padding=1)
        self.norm1 = norm_layer_with_permutes(mid, norm_layer, 'channels_first', 'channels_first')
        self.act = act_layer_by_name(act_layer)
        self.conv2 = nn.Conv2d(mid, out_chans, kernel_size=3, stride=2, padding=1)
        self.norm2 = norm_layer_with_permutes(out_chans, norm_layer, 'channels_first',
                                              'channels_last')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(x))


class DownsampleLayer(nn.Module):
    """3x3 stride-2 conv doubling the width; NHWC in and out."""

    def __init__(self, channels: int, norm_layer: str = 'LN') -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, kernel_size=3, stride=2, padding=1,
                              bias=False)
        self.norm = norm_layer_with_permutes(2 * channels, norm_layer, 'channels_first',
                                     'channels_last')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))
