"""Compiled CPU DCNv3 op vs the pure-PyTorch path at InternImage-T stage shapes.

    python benchmarks/bench_dcnv3_cpu.py [--batch 2] [--height 64] [--width 96]

Prints forward and forward+backward times (ms, median of --iters runs) and
the speed-up of the compiled op. Stage 1 is (H, W, C=64, G=4, D=16); each
deeper stage halves H and W and doubles C and G. The two paths run in turns,
one call each, so that both see the same machine (on a shared VM the speed
drifts by tens of per cent within seconds). --isa picks the instruction set
of the compiled CPU kernels (default: the best this CPU supports).
"""
import argparse
import statistics
import time
from typing import Callable, List

import torch

import ops_dcnv3
from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch


def make_inputs(n: int, h: int, w: int, g: int, d: int, requires_grad: bool) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, h, w, g * d, generator=gen)
    off = torch.randn(n, h, w, g * 18, generator=gen) * 2
    mask = torch.randn(n, h, w, g, 9, generator=gen).softmax(-1).reshape(n, h, w, g * 9)
    return [t.requires_grad_(requires_grad) for t in (x, off, mask)]


def time_in_turns(fns: List[Callable[[], None]], iters: int, warmup: int = 2) -> List[float]:
    """Median time (ms) of each function, calling them in turns."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    runs: List[List[float]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, times in zip(fns, runs):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(times) for times in runs]


def bench_stage(n: int, h: int, w: int, g: int, d: int, iters: int) -> dict:
    """{'compiled' | 'pytorch': (forward ms, forward+backward ms)}."""
    args = (3, 3, 1, 1, 1, 1, 1, 1, g, d, 1.0)
    cores = {
        'compiled': lambda x, o, m: DCNv3Function.apply(x, o, m, *args, 256),
        'pytorch': lambda x, o, m: dcnv3_core_pytorch(x, o, m, *args),
    }
    fwd, fwd_bwd = [], []
    for core in cores.values():
        ins = make_inputs(n, h, w, g, d, requires_grad=True)

        def forward(core=core, ins=ins):
            with torch.no_grad():
                core(*ins)

        def forward_backward(core=core, ins=ins):
            out = core(*ins)
            out.backward(torch.ones_like(out))

        fwd.append(forward)
        fwd_bwd.append(forward_backward)
    times = zip(time_in_turns(fwd, iters), time_in_turns(fwd_bwd, iters))
    return dict(zip(cores, times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--height', type=int, default=64)
    parser.add_argument('--width', type=int, default=96)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--isa', choices=ops_dcnv3.supported_cpu_isas(),
                        default=ops_dcnv3.cpu_isa())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ops_dcnv3.set_cpu_isa(args.isa)
    print(f'DCNv3 CPU benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'float32, N={args.batch}, CPU kernels: {ops_dcnv3.cpu_isa()}')
    header = (f"{'stage':<6}{'shape (H, W, C, G)':<22}{'fwd compiled':>14}{'fwd pytorch':>13}"
              f"{'speed-up':>10}{'f+b compiled':>14}{'f+b pytorch':>13}{'speed-up':>10}")
    print(header)
    print('-' * len(header))
    h, w, g, d = args.height, args.width, 4, 16
    for stage in range(1, 5):
        r = bench_stage(args.batch, h, w, g, d, args.iters)
        (fc, bc), (fp, bp) = r['compiled'], r['pytorch']
        print(f'{stage:<6}{str((h, w, g * d, g)):<22}{fc:>11.2f} ms{fp:>10.2f} ms{fp / fc:>9.1f}x'
              f'{bc:>11.2f} ms{bp:>10.2f} ms{bp / bc:>9.1f}x')
        h, w, g = max(1, h // 2), max(1, w // 2), g * 2
    print('(times are medians; speed-up = pytorch time / compiled time)')


if __name__ == '__main__':
    main()
