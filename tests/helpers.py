"""The one home of the helpers the test packages share.

torch-only (no mmengine/mmcv/mmdet/mmseg imports): ``tests/ops_dcnv3`` also
runs on machines that have torch alone.

- :data:`REPO_ROOT`, :data:`GOLDEN_DIR`, :data:`MODEL_GOLDEN_DIR`: paths;
  the golden data live in the repository (``tests/data/golden``).
- :func:`golden_files` / :func:`load_golden`: the golden-data loader.
- :func:`random_case`: the op case maker.
- :func:`rel_err` (from ``ops_dcnv3.testing``): the relative-error helper.
- :data:`requires_compiled`, :func:`compiled_state`, :func:`core_op_params`:
  the compiled op's availability (``compiled_op`` and ``perturb_offsets``
  come from ``ops_dcnv3.testing``, shared with the benchmarks).
- :func:`tf32_disabled` (from ``ops_dcnv3.testing``): float32 matmuls and
  convolutions in full precision on CUDA (the ``no_tf32`` fixture of
  ``tests/conftest.py``).
"""
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import pytest
import torch

from ops_dcnv3.testing import compiled_op, rel_err, tf32_disabled  # noqa: F401 (re-exported)

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / 'tests' / 'data'
#: Reference results for the op, the module and the backbone.
GOLDEN_DIR = DATA_DIR / 'golden'
#: Reference results of whole detectors and segmentors (see its README.md).
MODEL_GOLDEN_DIR = GOLDEN_DIR / 'models'

#: The op's scalar arguments, in the order of the golden cases' ``args``.
OP_ARG_NAMES = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w',
                'dilation_h', 'dilation_w', 'group', 'group_channels', 'offset_scale')

#: Devices the op tests run on.
DEVICES: List[str] = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def golden_files(prefix: str, directory: Path = GOLDEN_DIR) -> List[Path]:
    """The golden cases ``{prefix}_*.pt``; none found is a failure, not a skip."""
    files = sorted(directory.glob(f'{prefix}_*.pt'))
    assert files, f'no {prefix}_*.pt golden cases under {directory}'
    return files


def load_golden(path: Union[str, Path], directory: Path = GOLDEN_DIR) -> Dict[str, Any]:
    """One golden case: a path, or a file name (``.pt`` optional) under ``directory``."""
    path = Path(path)
    if not path.is_absolute() and not path.is_file():
        path = directory / (path.name if path.suffix == '.pt' else f'{path.name}.pt')
    if not path.is_file():
        pytest.fail(f'golden case {path} is missing')
    # Written by the reference scripts: the op/module/backbone cases hold
    # tensors and plain values, the whole-model cases also other Python
    # objects, so the full unpickler (trusted files of this repository).
    return torch.load(path, map_location='cpu', weights_only=False)


def op_args(case: Dict[str, Any]) -> list:
    """The scalar op arguments of an ``op_*`` golden case, in call order."""
    return [case['args'][k] for k in OP_ARG_NAMES]


def max_rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max|out − ref| / max|ref| (the whole-model golden README's *rel*)."""
    out, ref = out.detach().double().cpu(), ref.detach().double().cpu()
    return ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-300)).item()


def random_case(N=2, H=7, W=9, G=2, D=4, k=3, stride=1, pad=1, dilation=1,
                offset_scale=1.0, dtype=torch.float64, device='cpu', spread=3.0,
                seed=0) -> Tuple[List[torch.Tensor], list]:
    """Random input, offset and softmax'd mask for a square-kernel call, and
    the op's scalar arguments."""
    gen = torch.Generator().manual_seed(seed)
    Ho = (H + 2 * pad - (dilation * (k - 1) + 1)) // stride + 1
    Wo = (W + 2 * pad - (dilation * (k - 1) + 1)) // stride + 1
    P = k * k
    x = torch.randn(N, H, W, G * D, generator=gen, dtype=torch.float64)
    off = torch.randn(N, Ho, Wo, G * P * 2, generator=gen, dtype=torch.float64) * spread
    mask = torch.randn(N, Ho, Wo, G, P, generator=gen, dtype=torch.float64).softmax(-1)
    tensors = [t.to(device=device, dtype=dtype)
               for t in (x, off, mask.reshape(N, Ho, Wo, G * P))]
    args = [k, k, stride, stride, pad, pad, dilation, dilation, G, D, offset_scale]
    return tensors, args


def compiled_state() -> str:
    """'available', 'not built', or 'broken' (an extension file exists but
    does not import)."""
    import ops_dcnv3
    if ops_dcnv3.compiled_available():
        return 'available'
    pkg = Path(ops_dcnv3.__file__).parent
    return 'broken' if list(pkg.glob('_C*.so')) + list(pkg.glob('_C*.pyd')) else 'not built'


#: Skips a test when the compiled op is not built (a broken build fails in
#: :func:`require_compiled_if_built`).
requires_compiled = pytest.mark.skipif(compiled_state() != 'available',
                                       reason='ops_dcnv3._C is not built')


def require_compiled_if_built(core_op: str) -> None:
    """Fail (not skip) when ``core_op`` is the compiled op and it is built but
    does not import."""
    if core_op == 'DCNv3' and compiled_state() == 'broken':
        import ops_dcnv3._ext as ext
        pytest.fail('ops_dcnv3._C exists but does not import: '
                    f"{getattr(ext, '_IMPORT_ERROR', '?')}")


def core_op_params() -> List[Any]:
    """Both backbone core ops; the compiled one skipped only when not built."""
    reason = 'ops_dcnv3._C (compiled DCNv3 op) is not built'
    return ['DCNv3_pytorch',
            pytest.param('DCNv3', marks=pytest.mark.skipif(
                compiled_state() == 'not built', reason=reason))]


def op_cores() -> Sequence[Any]:
    """The two op paths as pytest params: ``compiled`` and ``pytorch``."""
    from ops_dcnv3.functions import dcnv3_core_pytorch
    return [pytest.param(compiled_op, id='compiled', marks=requires_compiled),
            pytest.param(dcnv3_core_pytorch, id='pytorch')]


#: A tiny T-style backbone (pre-norm, layer scale) for fast tests.
TINY = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8], layer_scale=1.0,
            offset_scale=1.0, post_norm=False, drop_path_rate=0.)
