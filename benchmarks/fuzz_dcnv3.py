"""Long fuzz of the DCNv3 op: the compiled op and the pure-PyTorch path on
thousands of seeded random calls (valid ones, ones with NaN/inf/huge
offsets, masks and pixels, and invalid ones), on every CPU instruction set.

    python benchmarks/fuzz_dcnv3.py [--cases 5000] [--start 0] [--no-backward]
                                    [--isa avx2 --isa baseline]
    python benchmarks/fuzz_dcnv3.py --entry-points [--cases 5000] [--start 0]
                                    [--device cpu|cuda]

The cases are those of ``ops_dcnv3/testing/__init__.py`` (the test suite runs the
first 300); ``--start`` picks the first seed. Prints the cases per kind,
every disagreement (seed, case, what differs) and the time taken; exits 1
when any case disagrees. A disagreement is reproduced with
``make_case(seed)`` and ``check_case`` from that module.

With ``--entry-points``: the cases of ``ops_dcnv3/testing/entry_fuzz.py``
instead, ``--cases`` per entry point (the extension's ``dcnv3_forward`` and
``dcnv3_backward`` called directly, and the registered operators), each
call isolated in a child process so that a crash or a hang is counted, not
fatal. Prints the outcomes per entry point and every problem (crash, hang,
bad input accepted, good input refused, wrong result); exits 1 on any.
"""
import argparse
import collections
import sys
import time

import ops_dcnv3
from ops_dcnv3.functions import dcnv3_core_pytorch
from ops_dcnv3.testing import check_case, compiled_op, entry_fuzz, make_case


def fuzz_entry_points(cases: int, start: int, device: str) -> int:
    """The entry-point fuzz; the number of problems."""
    specs = entry_fuzz.specs_for(entry_fuzz.ENTRIES, range(start, start + cases))
    t0 = time.perf_counter()
    results = entry_fuzz.run_cases(specs, device=device)
    seconds = time.perf_counter() - t0
    outcomes: collections.Counter = collections.Counter()
    problems = 0
    for r in results:
        outcomes[(r['text'].split()[0], r['outcome'])] += 1
        if r['problem']:
            problems += 1
            print(f"{r['text']}: {r['problem']}")
    for entry in entry_fuzz.ENTRIES:
        shown = ', '.join(f'{o} {n}' for (e, o), n in sorted(outcomes.items()) if e == entry)
        print(f'[{entry}] {shown}')
    print(f'{len(results)} calls on {device} (seeds {start}-{start + cases - 1}) in '
          f'{seconds:.0f} s: {problems} problem(s)')
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', type=int, default=5000)
    parser.add_argument('--start', type=int, default=0)
    parser.add_argument('--no-backward', action='store_true')
    parser.add_argument('--isa', action='append',
                        help='CPU instruction set(s) to run (default: all supported)')
    parser.add_argument('--entry-points', action='store_true',
                        help='fuzz the extension and operator entry points, each call '
                             'isolated in a child process')
    parser.add_argument('--device', default='cpu', help='with --entry-points: cpu or cuda')
    args = parser.parse_args()
    if not ops_dcnv3.compiled_available():
        print('the compiled op is not built: nothing to compare', file=sys.stderr)
        return 2
    if args.entry_points:
        return 1 if fuzz_entry_points(args.cases, args.start, args.device) else 0
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
