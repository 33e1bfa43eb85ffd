"""What TF32 does to InternImage's float32 outputs: relative error against
float64, with and without TF32, on the CPU by emulation, on a GPU for real.

    python benchmarks/bench_tf32.py [--device cpu|cuda] [--arch t] [--size 224]
                                    [--batch 1] [--seed 0]

TF32 ("TensorFloat-32") is how Ampere and newer NVIDIA GPUs run float32
matrix products and convolutions on their tensor cores: each operand is
rounded to 10 mantissa bits (float32 has 23), products are summed in float32.
PyTorch uses it by default for cuDNN convolutions
(``torch.backends.cudnn.allow_tf32 = True``), not for matmuls and linear
layers (``torch.backends.cuda.matmul.allow_tf32 = False``). docs/tf32.md
has the figures and how to turn it off.

Emulation (any device): every input and weight of the chosen layers is
rounded to TF32 (round to nearest, ties away from zero, as cuBLAS/cuDNN
convert) by forward pre-hooks on a copy of the float32 model, and so is the
gradient of their output in the backward pass (backward pre-hooks: the
input gradient is a convolution or matmul of it with the rounded weights);
the copy then runs in full float32 precision. Three sets of layers:

- ``conv``: every nn.Conv2d (stem, downsampling, DCNv3's depthwise conv):
  what PyTorch's defaults put in TF32, if cuDNN runs all of them on tensor
  cores;
- ``conv w/o depthwise``: the same without the depthwise convolutions
  (cuDNN may run those without tensor cores);
- ``conv + linear``: also every nn.Linear (TF32 for matmuls too:
  ``torch.backends.cuda.matmul.allow_tf32 = True`` or
  ``torch.set_float32_matmul_precision('high')``).

The DCNv3 op itself is not affected: its kernels compute in plain float32.

Prints, for InternImage ``--arch`` at ``--size`` with seeded random weights
(the backbone's initialisation, then random DCNv3 offset and mask
projections, which initialise to zero, so that sampling is fractional as in
a trained model; ``--seed``) and for the tiny post-norm golden case
(tests/data/golden: reference outputs and input gradient in float64), the
relative error ‖out − ref‖ / ‖ref‖ of each output stage and of the input
gradient (for a seeded random output gradient) against float64: float32 in
full precision, each emulation, and on a GPU (``--device cuda``) real TF32
(PyTorch's defaults, and with matmuls in TF32 too). Needs the project's
packages (mmengine, mmcv) for the backbone.
"""
import argparse
import copy
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from ops_dcnv3.testing import perturb_offsets, rel_err, tf32_disabled

#: The golden cases of the test suite (tests/data/golden/README.md).
GOLDEN_DIR = Path(__file__).resolve().parents[1] / 'tests' / 'data' / 'golden'

#: Mantissa bits float32 has and TF32 keeps.
FP32_MANTISSA, TF32_MANTISSA = 23, 10


def round_to_tf32(t: torch.Tensor) -> torch.Tensor:
    """``t`` (float32) rounded to TF32's 10 mantissa bits, to nearest with
    ties away from zero; infinities and NaN unchanged; other dtypes as is."""
    if t.dtype != torch.float32:
        return t
    drop = FP32_MANTISSA - TF32_MANTISSA
    bits = t.contiguous().view(torch.int32)
    rounded = ((bits + (1 << (drop - 1))) & ~((1 << drop) - 1)).view(torch.float32)
    return torch.where(torch.isfinite(t), rounded, t).view_as(t)


def round_to_tf32_passing_grad(t: torch.Tensor) -> torch.Tensor:
    """round_to_tf32 in the forward pass, identity for autograd (the rounding
    of the gradient is done by the backward pre-hooks)."""
    if not torch.is_tensor(t) or t.dtype != torch.float32:
        return t
    return t + (round_to_tf32(t.detach()) - t.detach())  # exact: r - t and t + (r - t)


def is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


#: Layer sets of the emulation: name -> predicate on a module.
LAYER_SETS: Dict[str, Callable[[nn.Module], bool]] = {
    'conv': lambda m: isinstance(m, nn.Conv2d),
    'conv w/o depthwise': lambda m: isinstance(m, nn.Conv2d) and not is_depthwise(m),
    'conv + linear': lambda m: isinstance(m, (nn.Conv2d, nn.Linear)),
}


def emulate_tf32(model: nn.Module, layers: Callable[[nn.Module], bool]) -> nn.Module:
    """A copy of ``model`` whose chosen layers see TF32-rounded inputs and
    weights; returns it with ``emulated_layers`` (their count) set."""
    model = copy.deepcopy(model)
    count = 0
    for module in model.modules():
        if not layers(module):
            continue
        with torch.no_grad():
            module.weight.copy_(round_to_tf32(module.weight))
        module.register_forward_pre_hook(
            lambda mod, args: tuple(round_to_tf32_passing_grad(a) for a in args))
        module.register_full_backward_pre_hook(
            lambda mod, grads: tuple(round_to_tf32(g) if torch.is_tensor(g) else g
                                     for g in grads))
        count += 1
    model.emulated_layers = count
    return model


def outputs(model: nn.Module, x: torch.Tensor, grads: Sequence[torch.Tensor]
            ) -> List[torch.Tensor]:
    """The model's output stages and the gradient of its input for output
    gradients ``grads``."""
    x = x.detach().clone().requires_grad_()
    out = model(x)
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    torch.autograd.backward(out, [g.to(o) for g, o in zip(grads, out)])
    return [o.detach() for o in out] + [x.grad]


def errors(outs: Sequence[torch.Tensor], refs: Sequence[torch.Tensor]) -> List[float]:
    return [rel_err(o, r) for o, r in zip(outs, refs)]


def run_variants(model32: nn.Module, x32: torch.Tensor, grads: Sequence[torch.Tensor],
                 refs: Sequence[torch.Tensor], device: str) -> Dict[str, List[float]]:
    """Relative error of each output stage and of the input gradient, for
    each way to run the float32 model."""
    rows: Dict[str, List[float]] = {}

    def run(model: nn.Module) -> List[float]:
        return errors(outputs(model, x32, grads), refs)

    with tf32_disabled():
        rows['float32 (TF32 off)'] = run(model32)
        for name, layers in LAYER_SETS.items():
            emulated = emulate_tf32(model32, layers)
            rows[f'TF32 emulated: {name} ({emulated.emulated_layers} layers)'] = run(emulated)
    if device == 'cuda':
        with tf32_disabled():  # a known state, restored after
            torch.backends.cudnn.allow_tf32 = True
            rows['TF32 real: PyTorch defaults (cuDNN conv)'] = run(model32)
            torch.backends.cuda.matmul.allow_tf32 = True
            rows['TF32 real: conv + matmul'] = run(model32)
    return rows


def print_table(title: str, rows: Dict[str, List[float]]) -> None:
    n = len(next(iter(rows.values())))
    print(f'\n{title}: relative error ‖out − ref‖ / ‖ref‖ against float64')
    names = [f'stage {i + 1}' for i in range(n - 1)] + ['grad in']
    print(f'{"":<50}' + ''.join(f'{c:>10}' for c in names) + f'{"max":>10}{"× f32":>8}')
    base = max(next(iter(rows.values())))
    for name, errs in rows.items():
        print(f'{name:<50}' + ''.join(f'{e:>10.2e}' for e in errs) +
              f'{max(errs):>10.2e}{max(errs) / base:>8.0f}')


def build_backbone(core_op: str, kwargs: dict):
    try:
        from projects.internimage import InternImage
    except ImportError as exc:
        raise SystemExit(f'bench_tf32: the backbone needs the project packages ({exc}); '
                         'run `make install` first') from None
    return InternImage(core_op=core_op, **kwargs)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--arch', default='t')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('bench_tf32: --device cuda but no CUDA GPU is visible', file=sys.stderr)
        return 2
    import ops_dcnv3
    core_op = 'DCNv3' if ops_dcnv3.compiled_available() and (
        args.device == 'cpu' or ops_dcnv3.compiled_with_cuda()) else 'DCNv3_pytorch'
    from projects.internimage import get_arch
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'
    print(f'bench_tf32: torch {torch.__version__}, {name}, core_op {core_op}')

    torch.manual_seed(args.seed)
    model = build_backbone(core_op, get_arch(args.arch))
    model.init_weights()
    perturb_offsets(model, seed=args.seed)
    model.eval()
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=gen, dtype=torch.float64)
    channels = get_arch(args.arch)['channels']
    grads = [torch.randn(args.batch, channels * 2 ** i, args.size // (4 * 2 ** i),
                         args.size // (4 * 2 ** i), generator=gen, dtype=torch.float64).to(dev)
             for i in range(4)]
    refs = outputs(copy.deepcopy(model).to(dev, torch.float64), x.to(dev), grads)
    rows = run_variants(model.to(dev, torch.float32), x.to(dev, torch.float32), grads, refs,
                        args.device)
    print_table(f'InternImage-{args.arch.upper()} at {args.size}x{args.size}, batch '
                f'{args.batch}, seeded random weights (seed {args.seed}), {args.device}', rows)

    data = torch.load(GOLDEN_DIR / 'backbone_bb_tiny_s_postnorm.pt', weights_only=True)
    tiny = build_backbone(core_op, data['kwargs'])
    tiny.load_state_dict(data['state_dict'], strict=True)
    tiny = tiny.to(dev, torch.float32).eval()
    refs = [r.to(dev) for r in data['outputs']] + [data['grad_input'].to(dev)]
    rows = run_variants(tiny, data['input'].to(dev, torch.float32),
                        [g.to(dev) for g in data['grad_outputs']], refs, args.device)
    print_table('tiny post-norm golden (backbone_bb_tiny_s_postnorm, '
                f'{tuple(data["input"].shape)}), against its float64 reference', rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
