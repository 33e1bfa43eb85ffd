"""Build the CUDA variant of ops_dcnv3 out of tree and run tests/ops_dcnv3
against it with CPU tensors, without a GPU.

    <cuda-torch python> cuda_checks/cuda_build_check.py [--arch 9.0] [--jobs 2]
                                                        [--work build/cuda-build-check]
                                                        [-- extra pytest arguments]

``make cuda-build-check`` creates the CUDA-torch venv (requirements/cuda-check.txt)
and runs this script with it. A CUDA build differs from the CPU build in more
than its kernels: nvcc compiles some translation units, the binding gets the
CUDA dispatch (``-DWITH_CUDA``), the library links the CUDA runtime and
torch's CUDA libraries. Faults of that kind (e.g. a crash of every error
message in the CUDA build, issue 16) show with CPU tensors, so a CUDA build of
torch on a machine without a GPU finds them.

1. Stages a copy of the repository's ``ops_dcnv3`` package (Python files,
   ``src/``, ``setup.py``) and of ``tests/ops_dcnv3`` with the test helpers
   (and the two scripts those tests run) under ``--work``/stage (files
   copied only when changed, so that the build
   is incremental); ``tests/data`` is a link to the repository's.
2. Builds the extension there (``setup.py build_ext --inplace``) with
   ``FORCE_CUDA=1`` for one architecture (``TORCH_CUDA_ARCH_LIST``), against
   the running Python's torch, which must be a CUDA build. The CPU build's
   ``ops_dcnv3/_C*.so`` in the checkout is never touched.
3. Checks that the staged package imports the CUDA-built library
   (``ext().with_cuda()``) and not the checkout's.
4. Runs ``pytest tests/ops_dcnv3`` in the staged tree (CUDA tests skip
   without a GPU; every other test runs against the CUDA build). A test
   process killed by a signal is reported as a crash.

Prints the time of each step; exits 0 when all pass, 1 otherwise. Prints a
SKIP line and exits 0 when no nvcc is found.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from check_cuda_compile import find_nvcc, nvcc_info  # noqa: E402

#: What the staged tree holds, relative to the repository root (folders are
#: copied whole, minus build outputs).
STAGED = ('ops_dcnv3', 'tests/__init__.py', 'tests/conftest.py', 'tests/helpers.py',
          'tests/ops_dcnv3', 'setup.cfg', 'benchmarks/gpu_check.py',
          'cuda_checks/check_cuda_compile.py')
#: Build outputs and caches that are never staged.
SKIPPED_NAMES = {'build', '__pycache__', '.pytest_cache'}
SKIPPED_SUFFIXES = ('.so', '.pyc', '.pyd', '.egg-info')


def _skipped(path: Path) -> bool:
    return path.name in SKIPPED_NAMES or path.name.endswith(SKIPPED_SUFFIXES)


def _files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.iterdir()):
        if _skipped(path):
            continue
        if path.is_dir():
            yield from _files(path)
        else:
            yield path


def sync_tree(repo: Path, stage: Path, items: Iterable[str] = STAGED) -> int:
    """Makes ``stage`` hold a copy of ``items`` of ``repo``: copies new and
    changed files (with their times, so that the build's dependency check
    sees unchanged sources as unchanged) and removes staged source files that
    are gone from the repository. Returns the number of files copied."""
    copied = 0
    wanted = set()
    for item in items:
        src_root = repo / item
        if not src_root.exists():
            raise FileNotFoundError(f'cuda_build_check: {src_root} does not exist')
        for src in _files(src_root):
            rel = src.relative_to(repo)
            wanted.add(rel)
            dst = stage / rel
            st = src.stat()
            if dst.is_file():
                dt = dst.stat()
                if dt.st_size == st.st_size and int(dt.st_mtime) == int(st.st_mtime):
                    continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copied += 1
    for item in items:
        root = stage / item
        if root.is_dir():
            for dst in list(_files(root)):
                if dst.relative_to(stage) not in wanted:
                    dst.unlink()
    data = stage / 'tests' / 'data'
    if not data.is_symlink():
        data.symlink_to(repo / 'tests' / 'data', target_is_directory=True)
    return copied


def run_logged(cmd: List[str], cwd: Path, env: dict, log: Path,
               timeout: Optional[float] = None) -> int:
    """Runs ``cmd``, its output into ``log``; the exit status (negative: the
    signal that killed it)."""
    with open(log, 'w') as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout)
    return proc.returncode


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors='replace').splitlines()
    return '\n'.join('    ' + line for line in text[-lines:])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='9.0',
                        help='TORCH_CUDA_ARCH_LIST of the build (default 9.0: one arch)')
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='parallel compile jobs (MAX_JOBS)')
    parser.add_argument('--work', type=Path, default=REPO_ROOT / 'build' / 'cuda-build-check',
                        help='folder of the staged tree, the build and the logs')
    parser.add_argument('pytest_args', nargs='*',
                        help='extra pytest arguments (after --), e.g. -x or -k NAME')
    args = parser.parse_args(argv)

    import torch
    if torch.version.cuda is None:
        print(f'cuda_build_check: ERROR: {sys.executable} has torch {torch.__version__}, '
              'a CPU-only build; run this with a CUDA build of torch (make cuda-build-check '
              'creates one)')
        return 1
    nvcc = find_nvcc()
    if nvcc is None:
        print('SKIP: cuda_build_check: nvcc not found (set CUDA_HOME or put nvcc on PATH)')
        return 0
    release, cuda_include = nvcc_info(nvcc)
    cuda_home = cuda_include.parent.resolve()  # nvcc may be a wrapper outside the toolkit
    work = args.work.resolve()
    stage = work / 'stage'
    stage.mkdir(parents=True, exist_ok=True)
    print(f'cuda_build_check: torch {torch.__version__} (CUDA {torch.version.cuda}), '
          f'nvcc {release} ({cuda_home}), TORCH_CUDA_ARCH_LIST={args.arch}, '
          f'{args.jobs} job(s), work folder {work}')

    times = {}
    start = time.perf_counter()
    copied = sync_tree(REPO_ROOT, stage)
    times['stage'] = time.perf_counter() - start
    print(f'  ok    stage: {copied} file(s) copied  [{times["stage"]:.1f} s]')

    env = dict(os.environ, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=args.arch,
               CUDA_HOME=str(cuda_home), MAX_JOBS=str(args.jobs))
    env.pop('PYTHONPATH', None)  # the staged tree only
    build_log = work / 'build.log'
    start = time.perf_counter()
    rc = run_logged([sys.executable, 'setup.py', 'build_ext', '--inplace',
                     '--build-temp', str(work / 'temp')],
                    stage / 'ops_dcnv3', env, build_log)
    times['build'] = time.perf_counter() - start
    if rc != 0:
        print(f'  ERROR build (exit {rc}), log {build_log}  [{times["build"]:.1f} s]:')
        print(tail(build_log))
        return 1
    print(f'  ok    build  [{times["build"]:.1f} s], log {build_log}')

    probe = ('import ops_dcnv3, ops_dcnv3._ext as e; '
             'print(e.ext().__file__); print(e.ext().with_cuda())')
    out = subprocess.run([sys.executable, '-c', probe], cwd=stage, env=env,
                         capture_output=True, text=True)
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        print(f'  ERROR import of the staged build (exit {out.returncode}):\n'
              f'{out.stdout}{out.stderr}')
        return 1
    so_path, with_cuda = Path(lines[0]), lines[1] == 'True'
    if stage not in so_path.resolve().parents or not with_cuda:
        print(f'  ERROR the staged package imports {so_path} (with_cuda={with_cuda}); '
              f'expected the CUDA build under {stage}')
        return 1
    print(f'  ok    import: {so_path.relative_to(stage)}, with_cuda() = True')

    test_log = work / 'pytest.log'
    start = time.perf_counter()
    rc = run_logged([sys.executable, '-m', 'pytest', 'tests/ops_dcnv3', '-q',
                     '-p', 'no:cacheprovider', *args.pytest_args], stage, env, test_log)
    times['tests'] = time.perf_counter() - start
    summary = [line for line in test_log.read_text(errors='replace').splitlines()
               if ' passed' in line or ' failed' in line or ' error' in line]
    result = summary[-1].strip('= ') if summary else '(no pytest summary)'
    total = sum(times.values())
    if rc < 0:
        print(f'  CRASH tests/ops_dcnv3: pytest was killed by signal {-rc}  '
              f'[{times["tests"]:.1f} s], log {test_log}:')
        print(tail(test_log))
    elif rc != 0:
        print(f'  ERROR tests/ops_dcnv3: {result}  [{times["tests"]:.1f} s], log {test_log}:')
        print(tail(test_log, 60))
    else:
        print(f'  ok    tests/ops_dcnv3 with CPU tensors: {result}  [{times["tests"]:.1f} s]')
    verdict = 'OK' if rc == 0 else 'FAILED'
    print(f'cuda_build_check: {verdict} in {total:.0f} s (stage {times["stage"]:.0f} s, '
          f'build {times["build"]:.0f} s, tests {times["tests"]:.0f} s)')
    return 0 if rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
