"""Seeded fuzz: 300 random calls (valid, with special values, invalid) on
which the compiled op and the pure-PyTorch path must agree; see
``ops_dcnv3/testing/__init__.py``. ``benchmarks/fuzz_dcnv3.py`` runs the same cases in
their thousands."""
import collections

import torch

from ops_dcnv3.functions import dcnv3_core_pytorch
from ops_dcnv3.testing import check_case, compiled_op, make_case
from tests.helpers import requires_compiled

SEEDS = range(300)


@requires_compiled
def test_fuzz_both_paths_agree():
    kinds = collections.Counter()
    failures = []
    for seed in SEEDS:
        case = make_case(seed)
        kinds[case['kind']] += 1
        problem = check_case(case, compiled_op, dcnv3_core_pytorch)
        if problem:
            failures.append(f"{case['text']}: {problem}")
    # The corpus covers each part: plain, special values, invalid calls.
    assert kinds['valid'] >= 100 and kinds['special'] >= 80
    assert sum(kinds.values()) - kinds['valid'] - kinds['special'] >= 30
    assert not failures, f'{len(failures)} of {len(SEEDS)} cases differ:\n' + \
        '\n'.join(failures[:20])


def test_fuzz_special_values_pytorch_path():
    """Runs without the compiled op too: with a finite image and mask, the
    pure-PyTorch path's output is finite whatever the offsets (NaN, inf,
    1e30: such points lie outside the image and add exactly 0)."""
    checked = 0
    for seed in SEEDS:
        case = make_case(seed)
        if case['kind'] != 'special':
            continue
        x, off, mask = case['tensors']
        if not (torch.isfinite(x).all() and torch.isfinite(mask).all()):
            continue
        out = dcnv3_core_pytorch(x, off, mask, *case['args'])
        assert torch.isfinite(out).all(), case['text']
        checked += 1
    assert checked >= 20
