"""Compiled CPU DCNv3 op vs the pure-PyTorch path at InternImage-T stage shapes.

    python benchmarks/bench_dcnv3_cpu.py [--batch 2] [--height 64] [--width 96]

Prints forward and forward+backward times (ms, median of --iters runs) and
the speed-up of the compiled op. Stage 1 is (H, W, C=64, G=4, D=16); each
deeper stage halves H and W and doubles C and G.
"""
import argparse
import statistics
import time
from typing import Callable, List

import torch

from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch


def make_inputs(n: int, h: int, w: int, g: int, d: int, requires_grad: bool) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, h, w, g * d, generator=gen)
    off = torch.randn(n, h, w, g * 18, generator=gen) * 2
    mask = torch.randn(n, h, w, g, 9, generator=gen).softmax(-1).reshape(n, h, w, g * 9)
    return [t.requires_grad_(requires_grad) for t in (x, off, mask)]


def time_ms(fn: Callable[[], None], iters: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(runs)


def bench_stage(n: int, h: int, w: int, g: int, d: int, iters: int) -> dict:
    args = (3, 3, 1, 1, 1, 1, 1, 1, g, d, 1.0)
    cores = {
        'compiled': lambda x, o, m: DCNv3Function.apply(x, o, m, *args, 256),
        'pytorch': lambda x, o, m: dcnv3_core_pytorch(x, o, m, *args),
    }
    result = {}
    for name, core in cores.items():
        ins = make_inputs(n, h, w, g, d, requires_grad=True)

        def fwd():
            with torch.no_grad():
                core(*ins)

        def fwd_bwd():
            out = core(*ins)
            out.backward(torch.ones_like(out))

        result[name] = (time_ms(fwd, iters), time_ms(fwd_bwd, iters))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--height', type=int, default=64)
    parser.add_argument('--width', type=int, default=96)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f'DCNv3 CPU benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'float32, N={args.batch}')
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
