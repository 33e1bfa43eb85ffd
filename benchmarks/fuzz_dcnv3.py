"""Long fuzz of the DCNv3 op: the compiled op and the pure-PyTorch path on
thousands of seeded random calls (valid ones, ones with NaN/inf/huge
offsets, masks and pixels, and invalid ones), on every CPU instruction set.

    python benchmarks/fuzz_dcnv3.py [--cases 5000] [--start 0] [--no-backward]
                                    [--isa avx2 --isa baseline]

The cases are those of ``ops_dcnv3/testing.py`` (the test suite runs the
first 300); ``--start`` picks the first seed. Prints the cases per kind,
every disagreement (seed, case, what differs) and the time taken; exits 1
when any case disagrees. A disagreement is reproduced with
``make_case(seed)`` and ``check_case`` from that module.
"""
import argparse
import collections
import sys
import time

import ops_dcnv3
from ops_dcnv3.functions import dcnv3_core_pytorch
from ops_dcnv3.testing import check_case, compiled_op, make_case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', type=int, default=5000)
    parser.add_argument('--start', type=int, default=0)
    parser.add_argument('--no-backward', action='store_true')
    parser.add_argument('--isa', action='append',
                        help='CPU instruction set(s) to run (default: all supported)')
    args = parser.parse_args()
    if not ops_dcnv3.compiled_available():
        print('the compiled op is not built: nothing to compare', file=sys.stderr)
        return 2
    isas = args.isa or ops_dcnv3.supported_cpu_isas()
    failures = 0
    for isa in isas:
        previous = ops_dcnv3.set_cpu_isa(isa)
        kinds: collections.Counter = collections.Counter()
        bad: collections.Counter = collections.Counter()
        start = time.perf_counter()
        for seed in range(args.start, args.start + args.cases):
            case = make_case(seed)
            kinds[case['kind']] += 1
            problem = check_case(case, compiled_op, dcnv3_core_pytorch,
                                 backward=not args.no_backward)
            if problem:
                bad[case['kind']] += 1
                print(f"[{isa}] {case['text']}: {problem}")
        ops_dcnv3.set_cpu_isa(previous)
        seconds = time.perf_counter() - start
        failures += sum(bad.values())
        print(f'[{isa}] {args.cases} cases (seeds {args.start}-{args.start + args.cases - 1}) '
              f'in {seconds:.0f} s: {sum(bad.values())} disagree')
        print(f'[{isa}] cases per kind: ' +
              ', '.join(f'{k} {n}' for k, n in sorted(kinds.items())))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
