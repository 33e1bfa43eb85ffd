"""Helpers shared by the InternImage tests (imported by name: this directory
is on sys.path under pytest's default import mode)."""
import sys
from pathlib import Path
from typing import List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # plain `pytest` does not add the repo root
    sys.path.insert(0, str(REPO_ROOT))

#: Reference results, in ../shared beside the repository.
GOLDEN_DIR = REPO_ROOT.parent / 'shared' / 'golden'

#: A tiny T-style backbone (pre-norm, layer scale) for fast tests.
TINY = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8], layer_scale=1.0,
            offset_scale=1.0, post_norm=False, drop_path_rate=0.)


def compiled_state() -> str:
    """'available', 'not built', or 'broken' (an extension file exists but
    does not import)."""
    import ops_dcnv3
    if ops_dcnv3.compiled_available():
        return 'available'
    pkg = Path(ops_dcnv3.__file__).parent
    return 'broken' if list(pkg.glob('_C*.so')) + list(pkg.glob('_C*.pyd')) else 'not built'


def core_op_params() -> List:
    """Both core ops; the compiled one skipped only when it is not built."""
    reason = 'ops_dcnv3._C (compiled DCNv3 op) is not built'
    return ['DCNv3_pytorch',
            pytest.param('DCNv3', marks=pytest.mark.skipif(
                compiled_state() == 'not built', reason=reason))]
