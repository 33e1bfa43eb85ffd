"""Everything that needs a GPU, in one command (``make gpu-check``).

    python benchmarks/gpu_check.py [--out build/gpu-check] [--budget 340]
                                   [--jobs N] [--dry-run]

On a machine with a CUDA GPU and a CUDA build of torch, from the repository
root. Needs torch and pytest only (plus timm/onnxruntime where the tests use
them); steps that need more say so and are skipped. Steps, each with its own
timeout and its log in the ``--out`` folder (one file per step, plus
``summary.txt``), so that a failing step does not hide the others:

1. ``env``: GPU, driver, torch, nvcc, compilers.
2. ``build``: ops_dcnv3 in place (``setup.py build_ext --inplace``) with
   ``FORCE_CUDA=1`` for the visible GPU's architecture only
   (``TORCH_CUDA_ARCH_LIST`` from its compute capability).
3. ``crash-table``: the extension's direct entry point on the bad inputs of
   issue 16 (offset 2 channels short, stride 0, pad 2**31, NaN
   offset_scale, empty image, float64 offset, non-contiguous input) with CPU
   and CUDA tensors, each call in its own process: a table of raises /
   returns / signal. A call killed by a signal is run again under
   ``cuda-gdb`` (or ``gdb``) for a backtrace, into the log.
4. ``ops-tests``: ``pytest tests/ops_dcnv3`` (the CUDA tests, the op and
   module goldens on CUDA, ``opcheck`` on CUDA, ``torch.compile`` of the
   module on CUDA with aot_eager and Inductor, the entry-point fuzz on CUDA).
5. ``backbone-goldens``: ``pytest tests/models/test_backbone_golden.py`` on CUDA;
   skipped when the project's packages (mmengine, mmcv) do not import.
6. ``tf32``: ``benchmarks/bench_tf32.py --device cuda`` (real TF32 against the
   emulation); skipped like step 5.
7. ``bench``: ``benchmarks/bench_dcnv3_cuda.py`` (the speed table).

The steps share a time ``--budget`` (default 340 s, under 6 minutes with the
start-up): a step's timeout is cut to what is left, and a step with less than
10 s left is not started. Prints a summary (status and time per step) and the
speed table; exits 0 when no step failed or timed out, 1 otherwise, and 2
(before any step) when no CUDA GPU is visible. The logs folder holds 8 files
(7 logs and summary.txt).
``--dry-run`` prints the steps and their commands without running them
(also without a GPU).
"""
import argparse
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
#: A step's status in the summary.
PASSED, FAILED, TIMEOUT, SKIPPED = 'passed', 'FAILED', 'TIMEOUT', 'skipped'
#: Below this many seconds of budget a step is not started.
MIN_STEP_SECONDS = 10.0


@dataclass
class Step:
    """One step: a command (or None with ``skip`` set), its timeout and log."""
    name: str
    cmd: Optional[List[str]]
    timeout: float
    skip: Optional[str] = None      # reason not to run it
    env: Dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_ROOT
    note: str = ''                  # the condition it runs under (dry run)
    status: str = ''
    seconds: float = 0.0
    detail: str = ''


def run_steps(steps: Sequence[Step], out: Path, budget: float,
              echo: Callable[[str], None] = print,
              min_step: float = MIN_STEP_SECONDS) -> List[Step]:
    """Runs the steps in order, each into ``out/<name>.log``, within
    ``budget`` seconds in all (a step with less than ``min_step`` seconds
    left is not started); sets status, seconds and detail of each. A step
    that runs out of time is killed with every process it started."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    for step in steps:
        log = out / f'{step.name}.log'
        left = budget - (time.monotonic() - start)
        if step.skip:
            step.status, step.detail = SKIPPED, step.skip
            log.write_text(f'skipped: {step.skip}\n')
        elif left < min_step:
            step.status, step.detail = SKIPPED, f'time budget spent ({left:.0f} s left)'
            log.write_text(f'skipped: {step.detail}\n')
        else:
            timeout = min(step.timeout, left)
            echo(f'[gpu-check] {step.name}: {" ".join(step.cmd)}  (timeout {timeout:.0f} s)')
            t0 = time.monotonic()
            with open(log, 'w') as f:
                f.write(f'$ {" ".join(step.cmd)}\n\n')
                f.flush()
                env = dict(os.environ, **step.env)
                proc = subprocess.Popen(step.cmd, cwd=step.cwd, env=env, stdout=f,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)  # the step and everything it started
                    proc.wait()
                    rc = None
            step.seconds = time.monotonic() - t0
            if rc is None:
                step.status, step.detail = TIMEOUT, f'killed after {timeout:.0f} s'
            elif rc == 0:
                step.status = PASSED
            else:
                step.status = FAILED
                step.detail = f'exit {rc}' if rc > 0 else f'killed by signal {-rc}'
            step.detail = ' '.join(filter(None, [step.detail, last_result_line(log)]))
        echo(f'[gpu-check] {step.name}: {step.status} {step.detail}'.rstrip())
    return list(steps)


def last_result_line(log: Path) -> str:
    """pytest's summary line of a log, if any."""
    for line in reversed(log.read_text(errors='replace').splitlines()):
        if ' passed' in line or ' failed' in line or ' error' in line:
            return '(' + line.strip('= ') + ')'
    return ''


def summary(steps: Sequence[Step], total: float) -> str:
    lines = [f'{"step":<18}{"status":<9}{"seconds":>8}  detail']
    for s in steps:
        lines.append(f'{s.name:<18}{s.status:<9}{s.seconds:>8.1f}  {s.detail}')
    bad = [s.name for s in steps if s.status in (FAILED, TIMEOUT)]
    verdict = 'not passed: ' + ', '.join(bad) if bad else 'all steps passed or skipped'
    lines.append(f'total {total:.0f} s: {verdict}')
    return '\n'.join(lines)


def speed_table(log: Path) -> str:
    """The markdown table (and its heading lines) of bench_dcnv3_cuda.py's log."""
    if not log.is_file():
        return ''
    lines = log.read_text(errors='replace').splitlines()
    keep = [ln for ln in lines if ln.startswith('|') or ln.startswith('DCNv3 CUDA benchmark')
            or ln.startswith('measured device-to-device') or ln.startswith('goal')]
    return '\n'.join(keep)


def can_import(modules: Sequence[str], python: str = sys.executable) -> Optional[str]:
    """None when every module imports in ``python``; else the error."""
    code = ';'.join(f'import {m}' for m in modules)
    proc = subprocess.run([python, '-c', code], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ['?'])[-1]
    return last


# ------------------------------------------------------------ the crash table

#: The bad calls of issue 16's table: name -> how to change the good call.
CRASH_CASES = ('good arguments', 'offset 2 channels short', 'stride 0', 'pad 2**31',
               'NaN offset_scale', 'empty image', 'offset float64', 'non-contiguous input')

CRASH_CALL = textwrap.dedent('''
    import sys, torch
    from ops_dcnv3._ext import ext
    case, device = sys.argv[1], sys.argv[2]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, 8, generator=gen)
    off = torch.randn(2, 5, 6, 36, generator=gen)
    mask = torch.rand(2, 5, 6, 18, generator=gen)
    args = [3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, 64]
    if case == 'offset 2 channels short': off = off[..., :-2]
    if case == 'stride 0': args[2] = 0
    if case == 'pad 2**31': args[4] = 2 ** 31
    if case == 'NaN offset_scale': args[10] = float('nan')
    if case == 'empty image': x = x[:, :0]
    if case == 'offset float64': off = off.double()
    if case == 'non-contiguous input': x = x.transpose(1, 2)
    x, off, mask = (t.to(device) for t in (x, off, mask))
    try:
        ext().dcnv3_forward(x, off, mask, *args)
        print('returns')
    except Exception as e:
        print(f'raises {type(e).__name__}: {str(e).splitlines()[0]}')
''')


def crash_table(devices: Sequence[str], python: str = sys.executable,
                cases: Sequence[str] = CRASH_CASES) -> int:
    """Prints the table; backtraces of calls killed by a signal; returns the
    number of such calls."""
    debugger = shutil.which('cuda-gdb') or shutil.which('gdb')
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    crashed = []
    print('| call (ext().dcnv3_forward) | ' + ' | '.join(f'{d} tensors' for d in devices) + ' |')
    print('|---|' + '---|' * len(devices))
    for case in cases:
        cells = []
        for device in devices:
            proc = subprocess.run([python, '-c', CRASH_CALL, case, device], capture_output=True,
                                  text=True, cwd=REPO_ROOT, env=env, timeout=120)
            if proc.returncode < 0:
                cells.append(f'signal {-proc.returncode}')
                crashed.append((case, device))
            elif proc.returncode != 0:
                cells.append('error: ' + (proc.stderr.strip().splitlines() or ['?'])[-1])
            else:
                cells.append(proc.stdout.strip())
        print(f'| {case} | ' + ' | '.join(cells) + ' |')
    for case, device in crashed[:2]:
        print(f'\nbacktrace of "{case}" with {device} tensors ({debugger or "no debugger found"}):')
        if debugger:
            proc = subprocess.run([debugger, '-batch', '-ex', 'run', '-ex', 'bt 40',
                                   '-ex', 'info sharedlibrary', '--args', python, '-c',
                                   CRASH_CALL, case, device],
                                  capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                                  timeout=300)
            print(proc.stdout[-20000:], proc.stderr[-3000:])
    return len(crashed)


# ------------------------------------------------------------------ the steps


def env_report(python: str = sys.executable) -> None:
    import platform
    import sysconfig

    import torch
    print(f'python {sys.version.split()[0]} ({python}), {platform.platform()}')
    print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
          f'cuDNN {torch.backends.cudnn.version()}')
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(f'GPU {i}: {p.name}, compute capability {p.major}.{p.minor}, '
                  f'{p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs')
    for cmd in (['nvidia-smi'], ['nvcc', '--version'], ['c++', '--version'],
                ['gcc', '--version']):
        if shutil.which(cmd[0]):
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
            print(f'$ {" ".join(cmd)}\n{out.strip()}\n')
    for var in ('CC', 'CXX', 'CFLAGS', 'LDSHARED', 'LDFLAGS'):
        print(f'sysconfig {var}: {sysconfig.get_config_var(var)}')


def visible_arch() -> Optional[str]:
    import torch
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return f'{major}.{minor}'


def make_steps(python: str, arch: str, jobs: int, out: Path,
               check_imports: bool = True) -> List[Step]:
    """The steps; ``check_imports=False`` (the dry run) does not try whether
    the project's packages import, it names the condition instead."""
    script = str(Path(__file__).resolve())
    env = dict(PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED='1')
    build_env = dict(env, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=arch, MAX_JOBS=str(jobs))
    sys.path.insert(0, str(REPO_ROOT / 'cuda_checks'))
    try:
        from check_cuda_compile import find_nvcc, nvcc_info
        nvcc = find_nvcc()
        if nvcc:
            build_env['CUDA_HOME'] = str(nvcc_info(nvcc)[1].parent.resolve())
    finally:
        sys.path.pop(0)
    mm = ['mmengine', 'mmcv.cnn', 'projects.internimage']
    if check_imports:
        mm_missing = can_import(mm, python)
        mm_skip = f'needs the project packages: {mm_missing}' if mm_missing else None
    else:
        mm_skip = None
    mm_note = f'(runs if {", ".join(mm)} import) '

    pytest = [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rfE']
    return [
        Step('env', [python, script, '--env-report'], 60, env=env),
        Step('build', [python, 'setup.py', 'build_ext', '--inplace'], 240, env=build_env,
             cwd=REPO_ROOT / 'ops_dcnv3'),
        Step('crash-table', [python, script, '--crash-table'], 90, env=env),
        Step('ops-tests', pytest + ['tests/ops_dcnv3'], 200, env=env),
        Step('backbone-goldens', pytest + ['tests/models/test_backbone_golden.py', '-k', 'cuda'],
             120, skip=mm_skip, env=env, note=mm_note),
        Step('tf32', [python, 'benchmarks/bench_tf32.py', '--device', 'cuda'], 120,
             skip=mm_skip, env=env, note=mm_note),
        Step('bench', [python, 'benchmarks/bench_dcnv3_cuda.py', '--iters', '20',
                       '--pytorch-iters', '3'], 150, env=env),
    ]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=REPO_ROOT / 'build' / 'gpu-check',
                        help='folder of the logs and summary.txt')
    parser.add_argument('--budget', type=float, default=340.0,
                        help='seconds for all steps together')
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='parallel compile jobs of the build')
    parser.add_argument('--dry-run', action='store_true', help='print the steps only')
    parser.add_argument('--env-report', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--crash-table', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    python = sys.executable
    if args.env_report:
        env_report(python)
        return 0
    if args.crash_table:
        import torch
        devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
        return 1 if crash_table(devices, python) else 0

    arch = visible_arch()
    if arch is None and not args.dry_run:
        import torch
        why = ('torch is a CPU-only build' if torch.version.cuda is None
               else 'no CUDA GPU is visible')
        print(f'gpu-check: {why} (torch {torch.__version__}); it runs on a machine with a '
              'CUDA GPU and a CUDA build of torch. Without one: `make cuda-build-check` '
              'builds the CUDA variant and tests it with CPU tensors.', file=sys.stderr)
        return 2
    steps = make_steps(python, arch or '(the visible GPU)', args.jobs, args.out,
                       check_imports=not args.dry_run)
    if args.dry_run:
        for s in steps:
            extra = ' '.join(f'{k}={v}' for k, v in s.env.items() if k != 'PYTHONPATH')
            print(f'{s.name:<18}timeout {s.timeout:>4.0f} s  {s.note}{extra} {" ".join(s.cmd)}')
        return 0
    t0 = time.monotonic()
    run_steps(steps, args.out, args.budget)
    text = summary(steps, time.monotonic() - t0)
    table = speed_table(args.out / 'bench.log')
    (args.out / 'summary.txt').write_text(text + '\n\n' + table + '\n')
    print('\n' + text)
    if table:
        print('\n' + table)
    print(f'\nlogs: {args.out}')
    return 1 if any(s.status in (FAILED, TIMEOUT) for s in steps) else 0


if __name__ == '__main__':
    sys.exit(main())
