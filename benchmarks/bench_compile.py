"""Eager against ``torch.compile`` (Inductor) on CPU, with the compiled DCNv3.

Two models, forward only (inference, ``torch.no_grad``), both sides in the
same run:

- the InternImage-T backbone, batch 8 at 224x224;
- UperNet + InternImage-T (``configs/ade20k/upernet_internimage_t_512_160k_ade20k.py``),
  batch 1 at 512x512, ``mode='tensor'`` (the decode head's logits).

Prints images/s of each side, the ratio compiled / eager, the compile time
(first call), and the largest relative difference between the two outputs
(max |compiled - eager| / max |eager|). Run from the repository root::

    python benchmarks/bench_compile.py                  # both models
    python benchmarks/bench_compile.py --models backbone --iters 3
    python benchmarks/bench_compile.py --freezing     # Inductor's CPU inference mode

On two CPU cores Inductor needs minutes per model to compile; keep
``--iters`` small.
"""
import argparse
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

from ops_dcnv3.testing import perturb_offsets

REPO_ROOT = Path(__file__).resolve().parents[1]

UPERNET_T = REPO_ROOT / 'configs' / 'ade20k' / 'upernet_internimage_t_512_160k_ade20k.py'
MODELS = ('backbone', 'upernet')


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--backbone-batch', type=int, default=8)
    parser.add_argument('--backbone-size', type=int, default=224)
    parser.add_argument('--upernet-batch', type=int, default=1)
    parser.add_argument('--upernet-size', type=int, default=512)
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations after the first (compiling) call')
    parser.add_argument('--iters', type=int, default=3, help='timed iterations')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--backend', default='inductor', help='torch.compile backend')
    parser.add_argument('--freezing', action='store_true',
                        help="Inductor's inference freezing (constant weights: prepacked "
                             'linear/conv weights, folded constants)')
    return parser.parse_args(argv)


def build_backbone() -> torch.nn.Module:
    from projects.internimage import InternImage, get_arch
    return InternImage(core_op='DCNv3', **get_arch('t'))


class _SegmentorTensorForward(torch.nn.Module):
    """``segmentor(inputs, None, mode='tensor')``."""

    def __init__(self, segmentor: torch.nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.segmentor(inputs, None, mode='tensor')


def build_upernet() -> torch.nn.Module:
    from mmseg.registry import MODELS as SEG_MODELS

    from projects.internimage.apis import load_config
    cfg = load_config(str(UPERNET_T))
    cfg.model.backbone.init_cfg = None
    return _SegmentorTensorForward(SEG_MODELS.build(cfg.model))


def timed_pair(eager: Callable[[], object], compiled: Callable[[], object], batch: int,
               warmup: int, iters: int) -> Tuple[float, float]:
    """images/s of each side over ``iters`` calls after ``warmup`` untimed
    ones; the calls alternate (eager, compiled, eager, ...) so that both
    sides see the same machine load."""
    for _ in range(warmup):
        eager()
        compiled()
    spent = [0.0, 0.0]
    for _ in range(iters):
        for i, step in enumerate((eager, compiled)):
            start = time.perf_counter()
            step()
            spent[i] += time.perf_counter() - start
    return batch * iters / spent[0], batch * iters / spent[1]


def first_tensor(out) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else torch.cat(
        [o.flatten() for o in out])


def bench(model: torch.nn.Module, x: torch.Tensor, args: argparse.Namespace) -> Dict[str, float]:
    compiled = torch.compile(model, backend=args.backend, fullgraph=True, dynamic=False)
    with torch.no_grad():
        eager_out = first_tensor(model(x))
        start = time.perf_counter()
        compiled_out = first_tensor(compiled(x))
        compile_s = time.perf_counter() - start
        diff = ((compiled_out - eager_out).abs().max() / eager_out.abs().max()).item()
        batch = x.shape[0]
        eager, comp = timed_pair(lambda: model(x), lambda: compiled(x), batch,
                                 args.warmup, args.iters)
    return dict(eager=eager, compiled=comp, compile_s=compile_s, max_rel_diff=diff)


def main(argv: List[str] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.freezing:
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
    print(f'eager vs torch.compile(backend={args.backend!r}, fullgraph=True'
          f'{", freezing" if args.freezing else ""}), CPU, '
          f'{torch.get_num_threads()} threads, torch {torch.__version__}, forward '
          f'(no_grad), {args.warmup} warm-up + {args.iters} timed iterations', flush=True)
    header = (f'{"model":<45} {"eager img/s":>12} {"compiled img/s":>15} {"ratio":>7} '
              f'{"compile s":>10} {"max rel diff":>13}')
    results = {}
    torch.manual_seed(0)
    cases = []
    if 'backbone' in args.models:
        cases.append((f'InternImage-T backbone, batch {args.backbone_batch}, '
                      f'{args.backbone_size}x{args.backbone_size}', build_backbone,
                      (args.backbone_batch, 3, args.backbone_size, args.backbone_size)))
    if 'upernet' in args.models:
        cases.append((f'UperNet InternImage-T, batch {args.upernet_batch}, '
                      f'{args.upernet_size}x{args.upernet_size}', build_upernet,
                      (args.upernet_batch, 3, args.upernet_size, args.upernet_size)))
    print(header, flush=True)
    for label, build, shape in cases:
        r = bench(perturb_offsets(build(), scale=0.02).eval(), torch.randn(*shape), args)
        results[label] = r
        # One row as soon as it is measured (compiling takes minutes).
        print(f'{label:<45} {r["eager"]:>12.2f} {r["compiled"]:>15.2f} '
              f'{r["compiled"] / r["eager"]:>6.2f}x {r["compile_s"]:>10.1f} '
              f'{r["max_rel_diff"]:>13.2e}', flush=True)
    return results


if __name__ == '__main__':
    main()
