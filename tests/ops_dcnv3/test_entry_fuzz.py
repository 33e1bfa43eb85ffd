"""Nothing reachable from Python crashes the process: the extension's own
functions and the registered operators on a thousand fuzzed calls each run,
every call isolated in a child process (see ``entry_fuzz.py``;
``benchmarks/fuzz_dcnv3.py --entry-points`` runs more)."""
import collections
import signal

import pytest

from tests.helpers import DEVICES, requires_compiled
from ops_dcnv3.testing.entry_fuzz import ENTRIES, run_cases, specs_for

SEEDS = range(250)


@requires_compiled
@pytest.mark.parametrize('device', DEVICES)
def test_entry_points_survive_fuzzed_calls(device):
    results = run_cases(specs_for(ENTRIES, SEEDS), device=device)
    problems = [f"{r['text']}: {r['problem']}" for r in results if r['problem']]
    assert not problems, f'{len(problems)} of {len(results)} calls:\n' + '\n'.join(problems[:30])
    # The corpus reaches both sides of every entry point: calls that return
    # and calls refused with an error.
    per_entry = collections.Counter((r['text'].split()[0], r['outcome'] == 'returned')
                                    for r in results)
    for entry in ENTRIES:
        assert per_entry[(entry, True)] >= 60, per_entry
        assert per_entry[(entry, False)] >= 60, per_entry


def test_a_crash_or_a_hang_is_counted_and_the_next_calls_still_run():
    specs = [('selftest_ok', 0), ('selftest_segfault', 1), ('selftest_ok', 2),
             ('selftest_hang', 3), ('selftest_ok', 4)]
    results = run_cases(specs, case_timeout=3)
    assert [r['outcome'] for r in results] == [
        'returned', f'crash (signal {int(signal.SIGSEGV)})', 'returned', 'hang', 'returned']
    assert [bool(r['problem']) for r in results] == [False, True, False, True, False]
