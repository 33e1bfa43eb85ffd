"""CUDA DCNv3 op: time, achieved bandwidth and speed-up over the pure-PyTorch
path at InternImage-T shapes (needs a GPU and ops_dcnv3 built with CUDA).

    python benchmarks/bench_dcnv3_cuda.py [--dtypes float32 float16 bfloat16]
                                          [--iters 50] [--no-pytorch]

Shapes (kernel 3x3, stride 1, pad 1, D = C / G = 16):
  classification, 224x224, batch 64: the four stages
      56x56 C64 G4, 28x28 C128 G8, 14x14 C256 G16, 7x7 C512 G32
  detection, 800x1344, batch 2: stages 1 and 2
      200x336 C64 G4, 100x168 C128 G8

Times are CUDA-event medians after warm-up. Minimum memory traffic (bytes),
with M = N * Ho * Wo output pixels, P = 9 points, s = sizeof(dtype), and the
input read once (Ho = H, Wo = W here):
  forward            M * (2C + 3GP) * s
                     (read input C and offset 2GP and mask GP, write output C)
  forward+backward   M * (5C + 9GP) * s
                     = forward + backward, the backward reading input C,
                     offset 2GP, mask GP, grad_output C and writing
                     grad_input C, grad_offset 2GP, grad_mask GP
                     (all in the op's dtype; the half-type float32
                     grad_input buffer of the kernel counts as overhead).
Achieved bandwidth = floor bytes / time, shown in GB/s and as a fraction of the
device's copy bandwidth, measured here with a large device-to-device copy
(bytes read + written / time). "x floor" = time / (floor bytes / copy bw).
Goals: bfloat16 forward at the detection shapes >= 40 % of copy bandwidth;
forward+backward within 5x of the floor.
"""
import argparse
import statistics
from typing import Callable, Dict, List, Tuple

import torch

from ops_dcnv3 import compiled_with_cuda
from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch

SHAPES: List[Tuple[str, int, int, int, int, int]] = [
    # name, N, H, W, C, G
    ('cls-224 s1', 64, 56, 56, 64, 4),
    ('cls-224 s2', 64, 28, 28, 128, 8),
    ('cls-224 s3', 64, 14, 14, 256, 16),
    ('cls-224 s4', 64, 7, 7, 512, 32),
    ('det-800x1344 s1', 2, 200, 336, 64, 4),
    ('det-800x1344 s2', 2, 100, 168, 128, 8),
]
P = 9
ARGS = lambda G, D: (3, 3, 1, 1, 1, 1, 1, 1, G, D, 1.0)  # noqa: E731


def cuda_time_ms(fn: Callable[[], None], iters: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def copy_bandwidth(iters: int) -> float:
    """Device-to-device copy bandwidth, bytes/s (read + write)."""
    n = 1 << 28  # 1 GiB of float32 per buffer
    src = torch.empty(n, dtype=torch.float32, device='cuda').uniform_()
    dst = torch.empty_like(src)
    ms = cuda_time_ms(lambda: dst.copy_(src), iters)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * n * 4 / (ms * 1e-3)


def make_inputs(N, H, W, C, G, dtype):
    gen = torch.Generator(device='cuda').manual_seed(0)
    x = torch.randn(N, H, W, C, device='cuda', generator=gen).to(dtype)
    off = (torch.randn(N, H, W, G * P * 2, device='cuda', generator=gen) * 2).to(dtype)
    mask = torch.randn(N, H, W, G, P, device='cuda', generator=gen).softmax(-1)
    mask = mask.reshape(N, H, W, G * P).to(dtype)
    grad = torch.randn(N, H, W, C, device='cuda', generator=gen).to(dtype)
    return x, off, mask, grad


def bench(core: Callable, inputs, iters: int) -> Tuple[float, float]:
    x, off, mask, grad = inputs
    leaves = [t.detach().clone().requires_grad_() for t in (x, off, mask)]

    def fwd():
        with torch.no_grad():
            core(x, off, mask)

    def fwd_bwd():
        for t in leaves:
            t.grad = None
        core(*leaves).backward(grad)

    return cuda_time_ms(fwd, iters), cuda_time_ms(fwd_bwd, iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dtypes', nargs='+', default=['float32', 'float16', 'bfloat16'])
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--pytorch-iters', type=int, default=10)
    parser.add_argument('--no-pytorch', action='store_true',
                        help='skip the pure-PyTorch path (no speed-up column)')
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit('bench_dcnv3_cuda: no CUDA GPU visible')
    if not compiled_with_cuda():
        raise SystemExit('bench_dcnv3_cuda: ops_dcnv3 was built without CUDA kernels '
                         '(rebuild it on a GPU machine, or with FORCE_CUDA=1)')

    props = torch.cuda.get_device_properties(0)
    copy_bw = copy_bandwidth(args.iters)
    print(f'DCNv3 CUDA benchmark: {props.name} ({props.total_memory / 2**30:.0f} GiB), '
          f'torch {torch.__version__}, CUDA {torch.version.cuda}')
    print(f'measured device-to-device copy bandwidth: {copy_bw / 1e9:.0f} GB/s '
          f'(read + write)')
    print()
    header = ('| shape | N | dtype | fwd ms | fwd GB/s | fwd % copy | fwd vs PyTorch '
              '| f+b ms | f+b GB/s | f+b x floor | f+b vs PyTorch | max rel err |')
    print(header)
    print('|' + '---|' * (header.count('|') - 1))
    goals: Dict[str, List[str]] = {'fwd': [], 'fb': []}
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        size = torch.tensor([], dtype=dtype).element_size()
        for name, N, H, W, C, G in SHAPES:
            D = C // G
            inputs = make_inputs(N, H, W, C, G, dtype)
            op_args = ARGS(G, D)
            compiled = lambda x, o, m: DCNv3Function.apply(x, o, m, *op_args, 256)  # noqa: E731
            reference = lambda x, o, m: dcnv3_core_pytorch(x, o, m, *op_args)  # noqa: E731
            fwd_ms, fb_ms = bench(compiled, inputs, args.iters)
            M = N * H * W
            fwd_bytes = M * (2 * C + 3 * G * P) * size
            fb_bytes = M * (5 * C + 9 * G * P) * size
            fwd_bw, fb_bw = fwd_bytes / (fwd_ms * 1e-3), fb_bytes / (fb_ms * 1e-3)
            fb_x_floor = fb_ms * 1e-3 / (fb_bytes / copy_bw)
            with torch.no_grad():
                out = compiled(*inputs[:3]).double()
                ref = reference(*(t.double() for t in inputs[:3]))
                err = ((out - ref).norm() / ref.norm()).item()
            if args.no_pytorch:
                vs_fwd = vs_fb = '-'
            else:
                ref_fwd, ref_fb = bench(reference, inputs, args.pytorch_iters)
                vs_fwd, vs_fb = f'{ref_fwd / fwd_ms:.1f}x', f'{ref_fb / fb_ms:.1f}x'
            print(f'| {name} | {N} | {dtype_name} | {fwd_ms:.3f} | {fwd_bw / 1e9:.0f} '
                  f'| {100 * fwd_bw / copy_bw:.0f} % | {vs_fwd} | {fb_ms:.3f} '
                  f'| {fb_bw / 1e9:.0f} | {fb_x_floor:.1f}x | {vs_fb} | {err:.1e} |', flush=True)
            if dtype == torch.bfloat16 and name.startswith('det'):
                ok = fwd_bw >= 0.4 * copy_bw
                goals['fwd'].append(f'{name}: {100 * fwd_bw / copy_bw:.0f} % of copy bandwidth '
                                    f'({"met" if ok else "NOT met"})')
            ok = fb_x_floor <= 5
            goals['fb'].append(f'{name} {dtype_name}: {fb_x_floor:.1f}x '
                               f'({"met" if ok else "NOT met"})')
            del inputs
            torch.cuda.empty_cache()
    print()
    print('Goal: bfloat16 forward at the detection shapes >= 40 % of copy bandwidth')
    for line in goals['fwd'] or ['(bfloat16 not benchmarked)']:
        print('  ' + line)
    print('Goal: forward+backward within 5x of the floor (floor bytes at copy bandwidth)')
    for line in goals['fb']:
        print('  ' + line)


if __name__ == '__main__':
    main()
