"""This checkout's DCNv3 op against another checkout's, in the same run.

    python benchmarks/bench_dcnv3_baseline.py --baseline DIR [--iters 20]

DIR is another checkout of the project with its compiled op built (e.g. the
commit before a change, from ``git worktree add`` or ``git archive``). Both
versions of ``ops_dcnv3`` are imported side by side (the baseline under
another package name) and run in turns, one call each, at InternImage-T's
stage-1 shape (H, W, C=64, G=4, D=16, float32): forward and forward+backward
of the compiled op and of the pure-PyTorch path. Prints medians (ms) and
the ratio this / baseline (above 1: this checkout is slower).
"""
import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

from bench_dcnv3_cpu import make_inputs, time_in_turns

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_package(root: Path, name: str) -> ModuleType:
    """``root/ops_dcnv3`` imported as package ``name``."""
    init = root / 'ops_dcnv3' / '__init__.py'
    if not init.is_file():
        raise SystemExit(f'{init} not found: --baseline must be a checkout of the project')
    if name != 'ops_dcnv3' and (init.parent / 'functions' / 'library.py').is_file():
        # torch.ops.ops_dcnv3.dcnv3 is one global name: a second checkout that
        # registers it replaces this checkout's kernels, and both sides would
        # time the same op.
        raise SystemExit(f'{init.parent} registers torch.ops.ops_dcnv3.dcnv3 too; comparing '
                         'two such checkouts needs one process each (run this benchmark '
                         'in each and compare the figures)')
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not module.compiled_available():
        raise SystemExit(f'{init.parent}: the compiled op is not built')
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--baseline', type=Path, required=True)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--height', type=int, default=64)
    parser.add_argument('--width', type=int, default=96)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    packages = {'this': load_package(REPO_ROOT, 'ops_dcnv3'),
                'baseline': load_package(args.baseline.resolve(), 'ops_dcnv3_baseline')}
    n, h, w, g, d = args.batch, args.height, args.width, 4, 16
    op_args = (3, 3, 1, 1, 1, 1, 1, 1, g, d, 1.0)
    print(f'DCNv3 this checkout vs {args.baseline}: torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, float32, N={n}, (H, W, C, G) = '
          f'{(h, w, g * d, g)}, CPU kernels: {packages["this"].cpu_isa()}')
    print(f"{'path':<10}{'pass':<7}{'this':>10}{'baseline':>12}{'ratio':>8}")
    for path in ('compiled', 'pytorch'):
        cores = []
        for pkg in packages.values():
            if path == 'compiled':
                cores.append(lambda x, o, m, F=pkg.DCNv3Function: F.apply(x, o, m, *op_args, 256))
            else:
                cores.append(lambda x, o, m, f=pkg.dcnv3_core_pytorch: f(x, o, m, *op_args))
        for pass_ in ('fwd', 'f+b'):
            fns = []
            for core in cores:
                ins = make_inputs(n, h, w, g, d, requires_grad=True)
                if pass_ == 'fwd':
                    def fn(core=core, ins=ins):
                        with torch.no_grad():
                            core(*ins)
                else:
                    def fn(core=core, ins=ins):
                        out = core(*ins)
                        out.backward(torch.ones_like(out))
                fns.append(fn)
            this, base = time_in_turns(fns, args.iters)
            print(f'{path:<10}{pass_:<7}{this:>7.2f} ms{base:>9.2f} ms{this / base:>7.2f}x')
    print('(medians; ratio = this / baseline)')


if __name__ == '__main__':
    main()
