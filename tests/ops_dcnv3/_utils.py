"""Helpers of the op tests (torch only: they also run on the GPU machine)."""
from pathlib import Path
from typing import Dict, List

import pytest
import torch

import ops_dcnv3

GOLDEN = Path(__file__).resolve().parents[3] / 'shared' / 'golden'
OP_ARG_NAMES = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w',
                'dilation_h', 'dilation_w', 'group', 'group_channels', 'offset_scale')

DEVICES: List[str] = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def golden_files(prefix: str) -> List[Path]:
    """The golden cases of one kind; a missing ../shared/golden is a failure."""
    files = sorted(GOLDEN.glob(f'{prefix}_*.pt'))
    assert files, f'no {prefix}_*.pt golden cases under {GOLDEN}'
    return files


def load_case(path: Path) -> Dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖ / ‖ref‖, computed in float64."""
    out, ref = out.detach().double().cpu(), ref.detach().double().cpu()
    return ((out - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def op_args(case: Dict) -> list:
    return [case['args'][k] for k in OP_ARG_NAMES]


requires_compiled = pytest.mark.skipif(
    not ops_dcnv3.compiled_available(), reason='ops_dcnv3._C is not built')


def random_case(N=2, H=7, W=9, G=2, D=4, k=3, stride=1, pad=1, dilation=1,
                offset_scale=1.0, dtype=torch.float64, device='cpu', spread=3.0,
                seed=0):
    """Random input, offset and softmax'd mask for a square-kernel call."""
    gen = torch.Generator().manual_seed(seed)
    Ho = (H + 2 * pad - (dilation * (k - 1) + 1)) // stride + 1
    Wo = (W + 2 * pad - (dilation * (k - 1) + 1)) // stride + 1
    P = k * k
    x = torch.randn(N, H, W, G * D, generator=gen, dtype=torch.float64)
    off = torch.randn(N, Ho, Wo, G * P * 2, generator=gen, dtype=torch.float64) * spread
    mask = torch.randn(N, Ho, Wo, G, P, generator=gen, dtype=torch.float64).softmax(-1)
    tensors = [t.to(device=device, dtype=dtype) for t in (x, off, mask.reshape(N, Ho, Wo, G * P))]
    args = [k, k, stride, stride, pad, pad, dilation, dilation, G, D, offset_scale]
    return tensors, args
