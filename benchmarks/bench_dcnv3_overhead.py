"""Per-call cost of the DCNv3 op against a bare autograd.Function, one run.

    python benchmarks/bench_dcnv3_overhead.py [--rounds 30] [--threads 1]

Times, per call, three ways of calling the same compiled kernels
(``ops_dcnv3._C``):

- ``DCNv3Function.apply``: the project's reference-compatible entry point;
- ``torch.ops.ops_dcnv3.dcnv3``: the registered operator called directly;
- ``bare autograd.Function``: a minimal ``torch.autograd.Function`` whose
  forward and backward call the extension's pybind functions
  (``ext().dcnv3_forward`` / ``ext().dcnv3_backward``) with no checks and no
  dispatcher, the reference implementation's design: the floor.

Two columns: forward without grad (inputs that do not require grad, under
``torch.no_grad()``) and forward + backward (leaf inputs that require grad,
``torch.autograd.grad`` of the output with a fixed gradient). Shapes, float32,
3x3 kernel, stride 1, pad 1, dilation 1, offset_scale 1, im2col_step 64:

- ``tiny``: N=1, H=2, W=2, C=4, G=1 (D=4), the issue's 1x2x2x4;
- ``T-stage4``: N=8, H=7, W=7, C=512, G=32 (D=16), InternImage-T's last stage.

On the CPU (``--threads`` threads, default 1) and, when a GPU is visible, on
CUDA (synchronised at the end of each block of calls). The paths run in
turns: each round times one block of calls of every path, so that all see
the same machine; the figure is the best round (per-call time of the
fastest block). The ratio is the path's time over the bare Function's.

It only imports ``ops_dcnv3`` (no project code), so it also measures an
older checkout: ``cd /tmp && python /path/to/bench_dcnv3_overhead.py`` with
that checkout installed.
"""
import argparse
import os
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch

import ops_dcnv3
from ops_dcnv3._ext import ext
from ops_dcnv3.functions import DCNv3Function

#: name: (N, H, W, G, D).
SHAPES: Dict[str, Tuple[int, int, int, int, int]] = {
    'tiny': (1, 2, 2, 1, 4),
    'T-stage4': (8, 7, 7, 32, 16),
}
#: Calls per timed block (CPU, CUDA): blocks of about a millisecond or more.
BLOCK = {'tiny': (200, 100), 'T-stage4': (5, 20)}
IM2COL_STEP = 64


class BareDCNv3(torch.autograd.Function):
    """The floor: an autograd.Function straight over the extension."""

    @staticmethod
    def forward(ctx, input, offset, mask, *args):
        ctx.args = args
        ctx.save_for_backward(input, offset, mask)
        return ext().dcnv3_forward(input, offset, mask, *args)

    @staticmethod
    def backward(ctx, grad_output):
        input, offset, mask = ctx.saved_tensors
        args = ctx.args
        grads = ext().dcnv3_backward(input, offset, mask, *args[:-1],
                                     grad_output.contiguous(), args[-1])
        return (*grads,) + (None,) * len(args)


def make_inputs(shape: Tuple[int, int, int, int, int], device: str,
                requires_grad: bool) -> Tuple[List[torch.Tensor], tuple]:
    """Input, offset and mask of a 3x3, stride 1, pad 1 call, and its scalars."""
    n, h, w, g, d = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, h, w, g * d, generator=gen)
    off = torch.randn(n, h, w, g * 18, generator=gen) * 2
    mask = torch.randn(n, h, w, g, 9, generator=gen).softmax(-1).reshape(n, h, w, g * 9)
    tensors = [t.to(device).requires_grad_(requires_grad) for t in (x, off, mask)]
    return tensors, (3, 3, 1, 1, 1, 1, 1, 1, g, d, 1.0, IM2COL_STEP)


def paths() -> Dict[str, Callable]:
    return {
        'DCNv3Function.apply': DCNv3Function.apply,
        'torch.ops.ops_dcnv3.dcnv3': torch.ops.ops_dcnv3.dcnv3,
        'bare autograd.Function': BareDCNv3.apply,
    }


def block_timers(shape, device: str, calls: int) -> Dict[str, Tuple[Callable, Callable]]:
    """{path: (forward block, forward+backward block)}: each returns the
    seconds per call of ``calls`` calls."""
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    fwd_ins, args = make_inputs(shape, device, requires_grad=False)
    bwd_ins, _ = make_inputs(shape, device, requires_grad=True)
    with torch.no_grad():
        grad = torch.randn_like(BareDCNv3.apply(*fwd_ins, *args))
    timers = {}
    for name, fn in paths().items():
        def forward(fn=fn):
            sync()
            start = time.perf_counter()
            with torch.no_grad():
                for _ in range(calls):
                    fn(*fwd_ins, *args)
            sync()
            return (time.perf_counter() - start) / calls

        def forward_backward(fn=fn):
            sync()
            start = time.perf_counter()
            for _ in range(calls):
                torch.autograd.grad(fn(*bwd_ins, *args), bwd_ins, grad)
            sync()
            return (time.perf_counter() - start) / calls

        timers[name] = (forward, forward_backward)
    return timers


def check_same_results(shape, device: str) -> None:
    """All paths give the same output and gradients (else the timing is moot)."""
    ins, args = make_inputs(shape, device, requires_grad=True)
    results = []
    for fn in paths().values():
        out = fn(*ins, *args)
        results.append((out, *torch.autograd.grad(out, ins, torch.ones_like(out))))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            if not torch.equal(a, b):
                raise SystemExit(f'paths disagree on {device} {shape}: not benchmarking')


def measure(shape, device: str, rounds: int, calls: int) -> Dict[str, Tuple[float, float]]:
    """{path: (best forward s/call, best forward+backward s/call)}."""
    check_same_results(shape, device)
    timers = block_timers(shape, device, calls)
    best = {name: [float('inf'), float('inf')] for name in timers}
    for _ in range(2):  # warm-up
        for fwd, fwd_bwd in timers.values():
            fwd(), fwd_bwd()
    for _ in range(rounds):
        for column in (0, 1):
            for name, pair in timers.items():
                best[name][column] = min(best[name][column], pair[column]())
    return {name: tuple(v) for name, v in best.items()}


def fmt(seconds: float) -> str:
    us = seconds * 1e6
    return f'{us:.1f} µs' if us < 1000 else f'{us / 1e3:.2f} ms'


def table(title: str, results: Dict[str, Tuple[float, float]]) -> str:
    floor = results['bare autograd.Function']
    lines = [f'**{title}**', '',
             '| path | forward, no grad | ratio | forward + backward | ratio |',
             '|---|---|---|---|---|']
    for name, (fwd, fwd_bwd) in results.items():
        lines.append(f'| `{name}` | {fmt(fwd)} | {fwd / floor[0]:.2f}x | '
                     f'{fmt(fwd_bwd)} | {fwd_bwd / floor[1]:.2f}x |')
    return '\n'.join(lines)


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=30,
                        help='timed rounds (the best one counts)')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads')
    parser.add_argument('--shapes', nargs='+', choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument('--devices', nargs='+', choices=['cpu', 'cuda'],
                        default=['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    args = parser.parse_args(argv)
    if not ops_dcnv3.compiled_available():
        raise SystemExit('ops_dcnv3._C is not built: nothing to measure')
    torch.set_num_threads(args.threads)
    print(f'ops_dcnv3 from {os.path.dirname(ops_dcnv3.__file__)}; torch {torch.__version__}; '
          f'{args.threads} CPU thread(s); best of {args.rounds} rounds; '
          f'load average {os.getloadavg()[0]:.2f}')
    for device in args.devices:
        if device == 'cuda':
            print(f'GPU: {torch.cuda.get_device_name()}')
        for name in args.shapes:
            n, h, w, g, d = SHAPES[name]
            calls = BLOCK[name][device == 'cuda']
            results = measure(SHAPES[name], device, args.rounds, calls)
            print()
            print(table(f'{device}, {name}: N={n}, H={h}, W={w}, C={g * d}, G={g} '
                        f'({calls} calls per block)', results))
    print(f'\nload average at the end {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
