"""Throughput of the InternImage-T backbone on CPU, per DCNv3 core op.

Prints images/s for forward (inference, no autograd) and forward+backward
(training mode) with core_op 'DCNv3' (compiled op) and 'DCNv3_pytorch', and
the ratio between them. Run from the repository root::

    python benchmarks/bench_backbone.py --batch 8 --size 224 --warmup 2 --iters 10
"""
import argparse
import time
from typing import Callable, Dict, List

import torch

from projects.internimage import InternImage, get_arch

CORE_OPS = ('DCNv3', 'DCNv3_pytorch')


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='t', help='variant (default: t)')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224, help='square input size')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--ops', nargs='+', default=list(CORE_OPS), choices=CORE_OPS)
    return parser.parse_args(argv)


def images_per_second(step: Callable[[], None], batch: int, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - start)


def bench_op(core_op: str, args: argparse.Namespace) -> Dict[str, float]:
    torch.manual_seed(0)
    model = InternImage(core_op=core_op, **get_arch(args.arch))
    x = torch.randn(args.batch, 3, args.size, args.size)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        sum(out.float().mean() for out in model(x)).backward()

    model.eval()
    fwd = images_per_second(forward, args.batch, args.warmup, args.iters)
    model.train()
    fwd_bwd = images_per_second(forward_backward, args.batch, args.warmup, args.iters)
    return {'forward': fwd, 'forward+backward': fwd_bwd}


def main(argv: List[str] = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'InternImage-{args.arch.upper()} backbone, CPU, batch {args.batch}, '
          f'{args.size}x{args.size}, {args.warmup} warm-up + {args.iters} timed iterations, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}')
    results = {op: bench_op(op, args) for op in args.ops}
    print(f'{"core_op":<15} {"forward img/s":>14} {"fwd+bwd img/s":>14}')
    for op, res in results.items():
        print(f'{op:<15} {res["forward"]:>14.2f} {res["forward+backward"]:>14.2f}')
    if all(op in results for op in CORE_OPS):
        a, b = results['DCNv3'], results['DCNv3_pytorch']
        print(f'ratio DCNv3 / DCNv3_pytorch: forward {a["forward"] / b["forward"]:.2f}x, '
              f'forward+backward {a["forward+backward"] / b["forward+backward"]:.2f}x')


if __name__ == '__main__':
    main()
