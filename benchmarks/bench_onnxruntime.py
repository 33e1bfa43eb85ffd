"""onnxruntime (CPU) against PyTorch eager on the portable ONNX export.

Two models with random weights: the InternImage-T backbone at 224x224 and
UperNet + InternImage-T at 512x512 (logits at the input size). Each is
exported with DCNv3 in the portable form (``ops_dcnv3.onnx``), then run
alternately in PyTorch eager (the compiled DCNv3 op) and in onnxruntime's
CPU provider with the same number of threads, in ``--rounds`` turns; the
best turn of each side gives images/s, and the ratio onnxruntime / PyTorch.
Also prints the largest output difference. Run from the repository root::

    python benchmarks/bench_onnxruntime.py --rounds 3 --iters 3
"""
import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

# non-zero offsets and masks (zero at initialisation): fractional sampling
from ops_dcnv3.testing import perturb_offsets

ROOT = Path(__file__).resolve().parents[1]

UPERNET_T = ROOT / 'configs' / 'ade20k' / 'upernet_internimage_t_512_160k_ade20k.py'
MODELS = ('backbone', 'upernet')


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--backbone-size', type=int, default=224)
    parser.add_argument('--upernet-size', type=int, default=512)
    parser.add_argument('--rounds', type=int, default=3, help='turns of each side')
    parser.add_argument('--iters', type=int, default=3, help='timed batches per turn')
    parser.add_argument('--threads', type=int, default=None,
                        help='threads of both sides (default: torch default)')
    return parser.parse_args(argv)


def build_backbone() -> torch.nn.Module:
    from projects.internimage import InternImage, get_arch
    torch.manual_seed(0)
    return perturb_offsets(InternImage(core_op='DCNv3', **get_arch('t')), scale=0.02).eval()


class BackboneOutputs(torch.nn.Module):
    """The backbone's four feature maps as a tuple."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(x))


def build_upernet() -> torch.nn.Module:
    from projects.internimage.apis import load_config
    from projects.internimage.apis.onnx_export import SegmentorLogits, build_model
    cfg = load_config(str(UPERNET_T))
    model = perturb_offsets(build_model(cfg, 'none'), scale=0.02)
    return SegmentorLogits(model).eval()


def best_rate(step: Callable[[], None], batch: int, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - start)


def bench(name: str, module: torch.nn.Module, size: int,
          args: argparse.Namespace) -> Dict[str, float]:
    import onnxruntime as ort

    from ops_dcnv3 import onnx as dcnv3_onnx
    x = torch.randn(args.batch, 3, size, size)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f'{name}.onnx')
        start = time.perf_counter()
        dcnv3_onnx.export(module, (x, ), path, input_names=['input'])
        export_s = time.perf_counter() - start
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(path, options,
                                       providers=['CPUExecutionProvider'])
    feed = {'input': x.numpy()}

    def run_torch():
        with torch.no_grad():
            return module(x)

    def run_ort():
        return session.run(None, feed)

    ref, got = run_torch(), run_ort()  # warm-up, and the difference
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    diff = max((torch.from_numpy(g) - r).abs().max().item() for g, r in zip(got, ref))
    scale = max(r.abs().max().item() for r in ref)
    rates = {'pytorch': 0.0, 'onnxruntime': 0.0}
    for _ in range(args.rounds):  # alternate, so both see the same machine
        rates['pytorch'] = max(rates['pytorch'], best_rate(run_torch, args.batch, args.iters))
        rates['onnxruntime'] = max(rates['onnxruntime'],
                                   best_rate(run_ort, args.batch, args.iters))
    return dict(rates, max_abs=diff, max_rel=diff / scale, export_s=export_s)


def main(argv: List[str] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import onnxruntime as ort
    print(f'onnxruntime {ort.__version__} (CPU) vs PyTorch {torch.__version__} eager '
          f'(compiled DCNv3), batch {args.batch}, {torch.get_num_threads()} threads, '
          f'best of {args.rounds} turns x {args.iters} batches, random weights')
    cases = {'backbone': ('InternImage-T backbone', build_backbone, args.backbone_size,
                          BackboneOutputs),
             'upernet': ('UperNet InternImage-T', build_upernet, args.upernet_size,
                         lambda m: m)}
    results = {}
    for key in args.models:
        label, build, size, wrap = cases[key]
        r = bench(key, wrap(build()).eval(), size, args)
        results[key] = r
        print(f'{label} {size}x{size}: PyTorch {r["pytorch"]:.2f} img/s, onnxruntime '
              f'{r["onnxruntime"]:.2f} img/s, ratio onnxruntime / PyTorch '
              f'{r["onnxruntime"] / r["pytorch"]:.2f}x; largest difference '
              f'{r["max_abs"]:.2g} (relative {r["max_rel"]:.2g}); export '
              f'{r["export_s"]:.0f} s', flush=True)
    return results


if __name__ == '__main__':
    main()
