"""Fuzz of every DCNv3 entry point reachable from Python, with each call
isolated so that a crash or a hang is counted, not fatal. torch-only.

Entry points:

- ``ext_forward``, ``ext_backward``: the compiled extension's functions
  ``ext().dcnv3_forward`` / ``ext().dcnv3_backward``, called directly (no
  Python checks in front of them);
- ``op_forward``, ``op_backward``: the registered operators
  ``torch.ops.ops_dcnv3.dcnv3`` / ``torch.ops.ops_dcnv3.dcnv3_backward``.

A case (:func:`make_case`) is a tiny valid call of one entry point (random
geometry, dtype float32/float64/float16/bfloat16, batch 0-2) with 0-2
mutations: a tensor of another dtype, rank or size, non-contiguous,
expanded, channels-last, with a storage offset, sparse, meta, on another
device, None, a numpy array, a list, an int, NaN/inf values, requires_grad;
a scalar that is 0, negative, 2**31, 2**63 - 1, 2**64, a bool, a float,
None, a string, a numpy int, NaN, inf or 1e308; a huge geometry with an
empty batch, with offset and mask shaped to match; an argument too few or
too many. Each mutation says whether the call must be refused, must succeed
or may do either; a call that succeeds must give outputs of the right shape,
and, for plain finite inputs, the values of the pure-PyTorch path.

:func:`run_cases` runs the cases in a child process (``python -m
ops_dcnv3.testing.entry_fuzz --child``) that reports each case before and after
the call; when the child dies (a signal) or stops answering (a hang), the
case it was running is recorded and a new child goes on with the next case.
Used by ``tests/ops_dcnv3/test_entry_fuzz.py`` and ``benchmarks/fuzz_dcnv3.py
--entry-points``.
"""
import argparse
import json
import math
import os
import random
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRIES = ('ext_forward', 'ext_backward', 'op_forward', 'op_backward')
#: Test-only entries that crash or hang on purpose (the harness's own test).
SELFTEST_ENTRIES = ('selftest_segfault', 'selftest_hang', 'selftest_ok')
#: Exceptions a refused call may raise (torch's own errors are RuntimeErrors).
REFUSALS = (TypeError, ValueError, RuntimeError, NotImplementedError, IndexError,
            OverflowError)
#: (rtol, atol) against the float64 pure-PyTorch path, per dtype.
TOLERANCE = {torch.float64: (1e-9, 1e-11), torch.float32: (1e-4, 1e-5),
             torch.float16: (4e-3, 4e-3), torch.bfloat16: (3e-2, 3e-2)}
SCALAR_NAMES = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w',
                'dilation_h', 'dilation_w', 'group', 'group_channels', 'offset_scale',
                'im2col_step')
TENSOR_ROLES = ('input', 'offset', 'mask', 'grad_output')
TENSOR_MUTATIONS = ('dtype_int', 'dtype_bool', 'dtype_complex', 'dtype_other_float',
                    'rank_low', 'rank_high', 'size_plus', 'size_zero', 'non_contiguous',
                    'expanded', 'channels_last', 'storage_offset', 'sparse', 'meta',
                    'other_device', 'none', 'numpy', 'list', 'int', 'non_finite',
                    'requires_grad')
SCALAR_VALUES = (0, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 40, 2 ** 63 - 1, -2 ** 63, 2 ** 64,
                 True, 1.5, None, '2', 'numpy_int', math.nan, math.inf, 1e308, -0.0)
OTHER_MUTATIONS = ('huge_geometry_empty_batch', 'one_arg_too_few', 'one_arg_too_many')


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def _roles(entry: str) -> Tuple[str, ...]:
    return TENSOR_ROLES if entry.endswith('backward') else TENSOR_ROLES[:3]


def make_case(entry: str, seed: int, device: str = 'cpu') -> Dict[str, Any]:
    """Case ``seed`` of ``entry``: dict(entry, tensors={role: value},
    scalars=[12 values], expect='valid' | 'invalid' | 'either',
    mutations=[names], extra=None | 'too_few' | 'too_many', text)."""
    rng = random.Random(f'{entry}/{seed}')
    gen = torch.Generator().manual_seed(seed)
    while True:
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        sh, sw, ph, pw = rng.randint(1, 2), rng.randint(1, 2), rng.randint(0, 2), rng.randint(0, 2)
        dh, dw, H, W = rng.randint(1, 2), rng.randint(1, 2), rng.randint(1, 5), rng.randint(1, 5)
        Ho, Wo = _out_size(H, kh, sh, ph, dh), _out_size(W, kw, sw, pw, dw)
        if Ho > 0 and Wo > 0:
            break
    N, G, D = rng.choice((0, 1, 1, 2)), rng.randint(1, 2), rng.randint(1, 4)
    P = kh * kw
    dtype = rng.choice((torch.float32, torch.float32, torch.float64, torch.float16,
                        torch.bfloat16))
    scale = rng.choice((1.0, 0.5, 2.0))
    shapes = dict(input=(N, H, W, G * D), offset=(N, Ho, Wo, G * P * 2),
                  mask=(N, Ho, Wo, G * P), grad_output=(N, Ho, Wo, G * D))
    tensors = {role: (torch.randn(shapes[role], generator=gen, dtype=torch.float64)
                      * (2 if role == 'offset' else 1)) for role in _roles(entry)}
    tensors['mask'] = tensors['mask'].abs()
    tensors = {k: v.to(device=device, dtype=dtype) for k, v in tensors.items()}
    scalars: List[Any] = [kh, kw, sh, sw, ph, pw, dh, dw, G, D, scale, rng.choice((1, 64, 256))]
    case = dict(entry=entry, seed=seed, device=device, tensors=tensors, scalars=scalars,
                expect='valid', mutations=[], extra=None)
    if entry.startswith('selftest'):
        return _finish(case)
    touched = set()  # each tensor and scalar is mutated at most once
    for _ in range(rng.choice((0, 1, 1, 1, 2))):
        kind = rng.random()
        if kind < 0.5:
            role = rng.choice(_roles(entry))
            if role not in touched:
                touched.add(role)
                _mutate_tensor(rng, case, role, rng.choice(TENSOR_MUTATIONS))
        elif kind < 0.9:
            index = rng.randrange(12)
            if index not in touched:
                touched.add(index)
                _mutate_scalar(rng, case, index, rng.choice(SCALAR_VALUES))
        elif not touched:
            touched.update(range(12))
            touched.update(_roles(entry))
            _mutate_other(rng, case, rng.choice(OTHER_MUTATIONS))
    return _finish(case)


def _finish(case: Dict[str, Any]) -> Dict[str, Any]:
    shown = ', '.join(case['mutations']) or 'none'
    t = case['tensors'].get('input')
    dtype = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
    case['text'] = (f"{case['entry']} seed={case['seed']} {case['device']} {dtype} "
                    f"scalars={case['scalars']} mutations: {shown} (expect {case['expect']})")
    return case


def _expect(case: Dict[str, Any], expect: str) -> None:
    """Combines expectations: invalid wins, then either."""
    order = ('valid', 'either', 'invalid')
    if order.index(expect) > order.index(case['expect']):
        case['expect'] = expect


def _mutate_tensor(rng: random.Random, case: Dict[str, Any], role: str, kind: str) -> None:
    t = case['tensors'][role]
    if not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.device.type == 'meta':
        return  # already mutated beyond further change
    is_op = case['entry'].startswith('op_')
    # The registered backward casts grad_output to the input's dtype.
    cast_ok = is_op and role == 'grad_output'
    case['mutations'].append(f'{role}:{kind}')
    expect = 'invalid'
    if kind in ('dtype_int', 'dtype_bool', 'dtype_complex'):
        t = {'dtype_int': t.long, 'dtype_bool': lambda: t > 0,
             'dtype_complex': lambda: t.to(torch.complex64)}[kind]()
        # NOTE: the registered backward (ops_dcnv3/functions/library.py)
        # casts grad_output to the input's dtype whatever it is, integers,
        # bools and complex numbers included: accepted today.
        expect = 'either' if cast_ok else 'invalid'
    elif kind == 'dtype_other_float':
        t = t.to(torch.float64 if t.dtype != torch.float64 else torch.float32)
        expect = 'valid' if cast_ok else 'invalid'
    elif kind == 'rank_low':
        t = t[0] if t.shape[0] > 0 else t.sum(0)
    elif kind == 'rank_high':
        t = t.unsqueeze(0)
    elif kind == 'size_plus':
        dim = rng.randrange(4)
        t = torch.cat([t, t.narrow(dim, 0, 1) if t.shape[dim] else
                       torch.zeros_like(t).narrow(dim, 0, 0)], dim)
        if t.shape[dim] == case['tensors'][role].shape[dim]:
            t = torch.cat([t, torch.zeros(*t.shape[:dim], 1, *t.shape[dim + 1:],
                                          dtype=t.dtype, device=t.device)], dim)
        # A taller or wider image can give the same output size.
        expect = 'either' if role == 'input' and dim in (1, 2) else 'invalid'
    elif kind == 'size_zero':
        dim = rng.randrange(4)
        if t.shape[dim] == 0:
            case['mutations'].pop()
            return
        t = t.narrow(dim, 0, 0)
    elif kind in ('non_contiguous', 'expanded', 'channels_last'):
        if kind == 'non_contiguous':
            t = torch.stack([t, t], -1).flatten(-2)[..., ::2]
        elif kind == 'expanded':
            t = t[..., :1].expand(t.shape)
        else:
            t = t.contiguous(memory_format=torch.channels_last)
        # The extension refuses non-contiguous tensors; the operator makes
        # them contiguous. (An expanded or channels-last tensor can still be
        # contiguous when the dimensions involved have size 1.)
        expect = 'valid' if is_op or t.is_contiguous() else 'invalid'
    elif kind == 'storage_offset':
        flat = torch.cat([torch.zeros(3, dtype=t.dtype, device=t.device), t.flatten()])
        t = flat[3:].view(t.shape)
        expect = 'valid'
    elif kind == 'sparse':
        t = t.to_sparse()
    elif kind == 'meta':
        t = t.to('meta')
        # The operator's meta kernel infers shapes (a meta result is fine).
        expect = 'either' if is_op else 'invalid'
    elif kind == 'other_device':
        if not torch.cuda.is_available():
            case['mutations'].pop()
            return
        t = t.to('cpu' if t.is_cuda else 'cuda')
    elif kind == 'none':
        t = None
    elif kind == 'numpy':
        t = t.float().cpu().numpy()
    elif kind == 'list':
        t = t.tolist()
    elif kind == 'int':
        t = 3
    elif kind == 'non_finite':
        t = t.clone()
        if t.numel():
            flat = t.view(-1)
            flat[rng.randrange(flat.numel())] = rng.choice((math.nan, math.inf, -math.inf))
        expect = 'valid'
    elif kind == 'requires_grad':
        t = t.detach().requires_grad_()
        expect = 'valid'
    case['tensors'][role] = t
    _expect(case, expect)


def _mutate_scalar(rng: random.Random, case: Dict[str, Any], index: int, value: Any) -> None:
    name = SCALAR_NAMES[index]
    if value == 'numpy_int':
        import numpy
        value = numpy.int64(case['scalars'][index]) if index != 10 else numpy.float32(1.0)
        expect = 'either'  # the same value as another type: accepted by some
    elif index == 10:  # offset_scale: a float
        if isinstance(value, float) and not math.isfinite(value):
            expect = 'invalid'
        elif value is None or isinstance(value, str):
            expect = 'invalid'
        else:
            expect = 'either'  # an int or a bool converts; 1e308, -0.0 are floats
    else:
        if value is None or isinstance(value, str) or isinstance(value, float):
            expect = 'invalid'  # not an int
        elif isinstance(value, bool):
            expect = 'either'  # an int subclass: bindings differ
        elif value <= 0 and not (name.startswith('pad') and value == 0):
            expect = 'invalid'
        elif index == 11:
            expect = 'either'  # im2col_step > 0: a memory knob the kernels don't use
        elif value >= 2 ** 31 or value < 0:
            expect = 'invalid'
        else:
            expect = 'either'  # in range, maybe inconsistent with the shapes
    case['mutations'].append(f'{name}={value!r}')
    case['scalars'][index] = value
    _expect(case, expect)


def _mutate_other(rng: random.Random, case: Dict[str, Any], kind: str) -> None:
    case['mutations'].append(kind)
    if kind == 'one_arg_too_few':
        case['extra'] = 'too_few'
        _expect(case, 'invalid')
    elif kind == 'one_arg_too_many':
        case['extra'] = 'too_many'
        _expect(case, 'invalid')
    elif kind == 'huge_geometry_empty_batch':
        # Sampling grids near the 2**31 limits; offsets and mask of an empty
        # batch can have the matching (huge) spatial sizes at no cost.
        tensors, scalars = case['tensors'], case['scalars']
        inp = tensors['input']
        s = list(scalars)
        s[2], s[3] = rng.choice((1, 2 ** 31 - 1)), rng.choice((1, 2 ** 30))
        s[4], s[5] = rng.choice((2 ** 30, 2 ** 31 - 1)), rng.choice((0, 2 ** 30))
        s[6], s[7] = rng.choice((1, 2 ** 29)), 1
        N, H, W, C = inp.shape
        kh, kw, sh, sw, ph, pw, dh, dw, G, D = s[:10]
        Ho, Wo = _out_size(H, kh, sh, ph, dh), _out_size(W, kw, sw, pw, dw)
        if Ho <= 0 or Wo <= 0:
            case['mutations'].pop()
            return
        opts = dict(dtype=inp.dtype, device=inp.device)
        try:  # sizes whose strides overflow int64 cannot be made
            new = dict(input=inp[:0],
                       offset=torch.empty(0, Ho, Wo, G * kh * kw * 2, **opts),
                       mask=torch.empty(0, Ho, Wo, G * kh * kw, **opts),
                       grad_output=torch.empty(0, Ho, Wo, C, **opts))
        except RuntimeError:
            case['mutations'].pop()
            return
        for role in tensors:
            tensors[role] = new[role]
        scalars[:] = s
        _expect(case, 'valid')


def call_args(case: Dict[str, Any]) -> List[Any]:
    """The positional arguments of the case's entry point."""
    t, s = case['tensors'], case['scalars']
    entry = case['entry']
    if entry == 'ext_backward':
        args = [t['input'], t['offset'], t['mask'], *s[:11], t['grad_output'], s[11]]
    elif entry == 'op_backward':
        args = [t['grad_output'], t['input'], t['offset'], t['mask'], *s]
    else:
        args = [t['input'], t['offset'], t['mask'], *s]
    if case['extra'] == 'too_few':
        args = args[:-1]
    elif case['extra'] == 'too_many':
        args = args + [1]
    return args


def entry_function(entry: str) -> Callable:
    if entry.startswith('ext_'):
        from ops_dcnv3._ext import ext
        return getattr(ext(), 'dcnv3_' + entry[4:])
    if entry.startswith('op_'):
        import ops_dcnv3  # noqa: F401  (registers the operators)
        return {'op_forward': torch.ops.ops_dcnv3.dcnv3,
                'op_backward': torch.ops.ops_dcnv3.dcnv3_backward}[entry]
    if entry == 'selftest_segfault':
        import ctypes
        return lambda *args: ctypes.string_at(0)
    if entry == 'selftest_hang':
        return lambda *args: time.sleep(3600)
    if entry == 'selftest_ok':
        return lambda *args: args[0] * 1
    raise ValueError(f'unknown entry point {entry!r}')


def _geometry(case: Dict[str, Any]) -> Optional[Tuple[int, ...]]:
    """(N, Ho, Wo, C, P) when the call's scalars are plain ints; else None."""
    inp, s = case['tensors'].get('input'), case['scalars']
    if not isinstance(inp, torch.Tensor) or inp.dim() != 4:
        return None
    if not all(type(v) is int for v in s[:10]):
        return None
    kh, kw, sh, sw, ph, pw, dh, dw, G, D = s[:10]
    if min(kh, kw, sh, sw, dh, dw, G, D) <= 0:
        return None
    N, H, W, _ = inp.shape
    return (N, _out_size(H, kh, sh, ph, dh), _out_size(W, kw, sw, pw, dw), G * D, kh * kw)


def _reference(case: Dict[str, Any]) -> Optional[List[torch.Tensor]]:
    """The pure-PyTorch path's results in float64 for plain finite CPU/CUDA
    inputs of a small call; None where no comparison applies."""
    from ops_dcnv3.functions import dcnv3_core_pytorch
    t, s = case['tensors'], case['scalars']
    tensors = [t[r] for r in _roles(case['entry'])]
    if not all(isinstance(x, torch.Tensor) and x.layout == torch.strided
               and x.device.type in ('cpu', 'cuda') and x.is_floating_point()
               and bool(torch.isfinite(x).all()) for x in tensors):
        return None
    if not all(type(v) is int for v in s[:10]) or type(s[10]) is not float:
        return None
    geometry = _geometry(case)
    if geometry is None or geometry[1] * geometry[2] * geometry[4] > 10 ** 5:
        return None
    x, off, mask = (v.detach().double().requires_grad_() for v in tensors[:3])
    try:
        out = dcnv3_core_pytorch(x, off, mask, *s[:11])
    except REFUSALS:
        return None
    if case['entry'].endswith('forward'):
        return [out.detach()]
    out.backward(tensors[3].double())
    return [x.grad, off.grad, mask.grad]


def _compare(got: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> Optional[str]:
    got, ref = got.detach().double().cpu(), ref.detach().double().cpu()
    if got.shape != ref.shape:
        return f'shape {tuple(got.shape)} != {tuple(ref.shape)}'
    rtol, atol = TOLERANCE.get(dtype, (1e-4, 1e-5))
    scale = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0
    if not torch.allclose(got, ref, rtol=rtol, atol=atol * scale):
        return f'max |diff| {float((got - ref).abs().max()):.3g} (rtol {rtol}, atol {atol})'
    return None


def check_outcome(case: Dict[str, Any], result: Any, error: Optional[BaseException]
                  ) -> Tuple[str, Optional[str]]:
    """(outcome, problem): outcome 'returned' or 'ErrorType'; problem None
    when the outcome fits the case."""
    if error is not None:
        name = type(error).__name__
        if not isinstance(error, REFUSALS):
            return name, f'unexpected exception type {name}: {error}'
        if not str(error).strip():
            return name, f'{name} without a message'
        if case['expect'] == 'valid':
            return name, f'valid call refused: {name}: {str(error).splitlines()[0]}'
        return name, None
    if case['expect'] == 'invalid':
        return 'returned', 'invalid call accepted'
    outs = list(result) if isinstance(result, (list, tuple)) else [result]
    if case['entry'].startswith('selftest'):
        return 'returned', None
    roles = ('input', 'offset', 'mask') if case['entry'].endswith('backward') else ('output',)
    if len(outs) != len(roles) or not all(isinstance(o, torch.Tensor) for o in outs):
        return 'returned', (f'returned {type(result).__name__} of {len(outs)}, '
                            f'not {len(roles)} tensors')
    geometry = _geometry(case)
    if geometry is not None:
        N, Ho, Wo, C, _ = geometry
        if case['entry'].endswith('forward'):
            wanted = [(N, Ho, Wo, C)]
        else:
            wanted = [tuple(case['tensors'][r].shape) for r in roles]
        got = [tuple(o.shape) for o in outs]
        if got != wanted:
            return 'returned', f'output shapes {got}, expected {wanted}'
    ref = _reference(case)
    if ref is not None:
        for role, o, r in zip(roles, outs, ref):
            problem = _compare(o, r, case['tensors']['input'].dtype)
            if problem:
                return 'returned', f'{role}: {problem}'
    return 'returned', None


def run_one(case: Dict[str, Any]) -> Tuple[str, Optional[str]]:
    fn = entry_function(case['entry'])
    try:
        result = fn(*call_args(case))
    except BaseException as exc:  # noqa: B902 (anything but a crash is reported)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return check_outcome(case, None, exc)
    return check_outcome(case, result, None)


# ------------------------------------------------------------ the harness


def _child(specs: List[Tuple[str, int]], device: str) -> None:
    """Runs the cases, reporting ``BEGIN i`` before and ``END i json`` after
    each, on stdout (flushed)."""
    out = sys.stdout
    for i, (entry, seed) in enumerate(specs):
        out.write(f'BEGIN {i}\n')
        out.flush()
        case = make_case(entry, seed, device)
        try:
            outcome, problem = run_one(case)
        except Exception as exc:  # the harness's own failure
            outcome, problem = 'harness', f'{type(exc).__name__}: {exc}'
        report = dict(outcome=outcome, problem=problem, text=case['text'],
                      expect=case['expect'])
        out.write(f'END {i} ' + json.dumps(report) + '\n')
        out.flush()


def run_cases(specs: Sequence[Tuple[str, int]], device: str = 'cpu',
              case_timeout: float = 60.0, python: str = sys.executable,
              cwd: Path = REPO_ROOT, env: Optional[dict] = None) -> List[Dict[str, Any]]:
    """Runs ``specs`` ((entry, seed) pairs) in child processes; one result
    dict per case: outcome ('returned', an exception name, 'crash (signal N)',
    'hang' or 'lost'), problem (None when fine), text. A child that dies or
    hangs is replaced by a new one starting at the next case."""
    specs = list(specs)
    results: List[Optional[Dict[str, Any]]] = [None] * len(specs)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault('OMP_NUM_THREADS', '1')
    start = 0
    while start < len(specs):
        spec_file = json.dumps(specs[start:])
        errors = tempfile.TemporaryFile()  # the child's stderr: a pipe could fill up
        proc = subprocess.Popen(
            [python, '-m', 'ops_dcnv3.testing.entry_fuzz', '--child', '--device', device],
            cwd=cwd, env=child_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=errors)
        proc.stdin.write(spec_file.encode())
        proc.stdin.close()
        # Raw reads of the child's stdout (a buffered reader would hold lines
        # that select() no longer reports); stderr is read at the end.
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        current: Optional[int] = None
        deadline = time.monotonic() + case_timeout + 60  # the child's imports
        hung, pending, eof = False, b'', False
        while not eof:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                hung = True
                break
            chunk = os.read(fd, 1 << 16)
            eof = not chunk
            pending += chunk
            *lines, pending = pending.split(b'\n')
            for line in lines:
                parts = line.decode().split(' ', 2)
                if parts[0] == 'BEGIN':
                    current = start + int(parts[1])
                    deadline = time.monotonic() + case_timeout
                elif parts[0] == 'END':
                    results[start + int(parts[1])] = json.loads(parts[2])
                    current = None
        sel.close()
        if hung:
            proc.kill()
        rc = proc.wait()
        proc.stdout.close()
        errors.seek(0)
        stderr = errors.read().decode(errors='replace')
        errors.close()
        if current is None:
            if rc != 0 and not hung:
                # Died between cases or before the first: the harness is broken.
                raise RuntimeError(f'entry_fuzz child exited {rc}:\n{stderr[-3000:]}')
            if hung:
                raise RuntimeError('entry_fuzz child stopped answering between cases')
            break
        entry, seed = specs[current]
        how = 'hang' if hung else (f'crash (signal {-rc})' if rc < 0 else f'exit {rc}')
        results[current] = dict(outcome=how, problem=f'{how}; stderr: {stderr[-500:]}',
                                text=f'{entry} seed={seed} {device}', expect='?')
        start = current + 1
    return [r if r is not None else dict(outcome='lost', problem='no result', text=str(s),
                                         expect='?') for r, s in zip(results, specs)]


def specs_for(entries: Sequence[str], seeds: Sequence[int]) -> List[Tuple[str, int]]:
    return [(entry, seed) for seed in seeds for entry in entries]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--child', action='store_true', help='run the specs read from stdin')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if args.child:
        specs = [tuple(s) for s in json.loads(sys.stdin.read())]
        _child(specs, args.device)


if __name__ == '__main__':
    main()
