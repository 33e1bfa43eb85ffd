"""Compile-only check of the DCNv3 CUDA sources, without a GPU.

    python cuda_checks/check_cuda_compile.py [--arch 80 --arch 90] [--jobs 1]
                                             [--no-host] [--emulate] [--werror]

A build and check tool, kept outside the ``ops_dcnv3`` package so that it is
not installed with it (``make test`` runs it through the Makefile's
``cuda-compile`` target).

1. Compiles every ``.cu`` under ``ops_dcnv3/src/cuda`` with nvcc against the
   installed torch's headers, with the flags torch's BuildExtension uses for
   extensions (``-D__CUDA_NO_HALF_OPERATORS__`` etc., ``-DWITH_CUDA``,
   ``-DTORCH_EXTENSION_NAME=_C``, ``-DTORCH_API_INCLUDE_EXTENSION_H``, the
   C++ ABI of torch, the C++ standard BuildExtension picks) for real architectures (sm_80 and sm_90
   by default), into a temporary directory.
2. Unless ``--no-host``: compiles the host parts of the CUDA build with the
   C++ compiler and ``-DWITH_CUDA`` (every ``.cpp`` under ``src/cuda`` and
   ``src/dcnv3_api.cpp``, whose CUDA dispatch the CPU build leaves out), and
   checks with ``nm`` that every DCNv3 symbol they need is defined by the
   objects (what the final link would report).
3. With ``--emulate``: builds ``cuda_checks/emulate/emu_main.cpp`` (the kernels
   of ``dcnv3_kernels.cuh`` compiled for the host on a software SIMT model,
   with AddressSanitizer) and runs it: every kernel result is compared with a
   double-precision evaluation of the op (several minutes on 2 cores).

Prints what it compiled and exits non-zero on any error (and on warnings from
our own sources with ``--werror``). Prints a SKIP line and exits 0 when nvcc is
not found. Torch's headers are passed as system headers so that only
diagnostics of our own sources are shown.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
SRC = REPO_ROOT / 'ops_dcnv3' / 'src'
CUDA_SRC = SRC / 'cuda'
#: The host SIMT emulator of the CUDA kernels (``simt_emu.h``, ``emu_main.cpp``).
EMULATE_DIR = HERE / 'emulate'

# torch.utils.cpp_extension.COMMON_NVCC_FLAGS (used when it cannot be read).
FALLBACK_NVCC_FLAGS = ['-D__CUDA_NO_HALF_OPERATORS__', '-D__CUDA_NO_HALF_CONVERSIONS__',
                       '-D__CUDA_NO_BFLOAT16_CONVERSIONS__', '-D__CUDA_NO_HALF2_OPERATORS__',
                       '--expt-relaxed-constexpr']


def find_nvcc() -> Optional[str]:
    """nvcc of $CUDA_HOME / $CUDA_PATH, torch's CUDA_HOME, $PATH or /usr/local/cuda."""
    homes = [os.environ.get('CUDA_HOME'), os.environ.get('CUDA_PATH')]
    try:
        from torch.utils.cpp_extension import CUDA_HOME
        homes.append(CUDA_HOME)
    except ImportError:
        pass
    for home in homes:
        if home and (Path(home) / 'bin' / 'nvcc').is_file():
            return str(Path(home) / 'bin' / 'nvcc')
    found = shutil.which('nvcc')
    if found:
        return found
    default = Path('/usr/local/cuda/bin/nvcc')
    return str(default) if default.is_file() else None


def nvcc_info(nvcc: str) -> Tuple[str, Path]:
    """Release of nvcc and the include directory of its toolkit."""
    out = subprocess.run([nvcc, '--version'], capture_output=True, text=True).stdout
    m = re.search(r'release (\d+\.\d+)', out)
    release = m.group(1) if m else 'unknown'
    # nvcc may be a wrapper script (e.g. /usr/local/bin/nvcc): ask it where
    # its toolkit lives.
    dry = subprocess.run([nvcc, '--dryrun', '-x', 'cu', '-c', os.devnull, '-o', os.devnull],
                         capture_output=True, text=True).stderr
    m = re.search(r'^#\$ TOP=(.+)$', dry, re.M)
    top = Path(m.group(1).strip()) if m else Path(nvcc).resolve().parent.parent
    include = top / 'include'
    if not (include / 'cuda_runtime_api.h').is_file():
        include = Path(nvcc).resolve().parent.parent / 'include'
    return release, include


def torch_flags() -> Tuple[List[str], List[str], List[str]]:
    """(-isystem include flags, defines, nvcc-only flags) for the installed torch."""
    import torch
    from torch.utils import cpp_extension
    includes = []
    for path in cpp_extension.include_paths():  # the CPU variant needs no CUDA_HOME
        includes += ['-isystem', path]
    includes += ['-isystem', sysconfig.get_paths()['include']]
    defines = ['-DWITH_CUDA', '-DTORCH_EXTENSION_NAME=_C', '-DTORCH_API_INCLUDE_EXTENSION_H',
               f'-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}']
    torch_include = Path(cpp_extension.include_paths()[0])
    if not (torch_include / 'c10' / 'cuda' / 'impl' / 'cuda_cmake_macros.h').is_file():
        # A CPU-only torch ships the c10/cuda headers without this generated
        # one (it only defines C10_CUDA_BUILD_SHARED_LIBS, used on Windows).
        defines.append('-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE')
    nvcc_flags = list(getattr(cpp_extension, 'COMMON_NVCC_FLAGS', FALLBACK_NVCC_FLAGS))
    return includes, defines, nvcc_flags


def torch_cxx_standard() -> str:
    """The ``-std`` flag torch's BuildExtension gives both compilers of an
    extension that names none (ops_dcnv3/setup.py names none): C++17 up to
    torch 2.12, C++20 from 2.13. Read from BuildExtension's source (it is
    not exposed); C++17 when that source does not say."""
    import inspect

    from torch.utils import cpp_extension
    found = re.findall(r"cpp_flag_prefix \+ '(c\+\+\d+)'", inspect.getsource(cpp_extension))
    return f'-std={found[0]}' if found else '-std=c++17'


class Job:
    def __init__(self, label: str, cmd: List[str], obj: Optional[Path]):
        self.label, self.cmd, self.obj = label, cmd, obj
        self.rc, self.output, self.seconds = 0, '', 0.0

    def run(self) -> 'Job':
        start = time.perf_counter()
        proc = subprocess.run(self.cmd, capture_output=True, text=True)
        self.seconds = time.perf_counter() - start
        self.rc, self.output = proc.returncode, (proc.stdout + proc.stderr).strip()
        return self


def own_warnings(output: str) -> List[str]:
    return [line for line in output.splitlines() if re.search(r'warning', line, re.I)]


def check_symbols(objects: List[Path]) -> Tuple[List[str], int]:
    """CUDA-side DCNv3 symbols (dcnv3::cuda::*, dcnv3::*_cuda) some object
    needs and none defines. (The CPU kernel is not compiled here.)"""
    nm = shutil.which('nm')
    if nm is None:
        print('  (nm not found: symbol check skipped)')
        return [], 0
    defined, needed = set(), {}
    for obj in objects:
        out = subprocess.run([nm, '-C', str(obj)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split(None, 2) if not line.startswith(' ') else ['', *line.split(None, 1)]
            if len(parts) < 3:
                continue
            kind, name = parts[1], parts[2]
            if not re.search(r'(^|\s)dcnv3::(cuda::|\w+_cuda\()', name):
                continue
            if kind == 'U':
                needed.setdefault(name, obj.name)
            elif kind in 'TtWw':
                defined.add(name)
    missing = [f'{name} (needed by {where})' for name, where in sorted(needed.items())
               if name not in defined]
    return missing, len(needed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', action='append', default=None,
                        help='real architecture to compile for, e.g. 80 (repeatable; '
                             'default: 80 and 90)')
    parser.add_argument('--jobs', '-j', type=int, default=1, help='parallel compile jobs')
    parser.add_argument('--no-host', action='store_true',
                        help='skip the host (.cpp) compilation and the symbol check')
    parser.add_argument('--emulate', action='store_true',
                        help='also build and run the host SIMT emulation test of the kernels')
    parser.add_argument('--werror', action='store_true',
                        help='fail on warnings from our own sources')
    args = parser.parse_args()
    archs = args.arch or ['80', '90']

    nvcc = find_nvcc()
    if nvcc is None:
        print('SKIP: check_cuda_compile: nvcc not found (set CUDA_HOME or put nvcc on PATH)')
        return 0
    release, cuda_include = nvcc_info(nvcc)
    cuda_sources = sorted(CUDA_SRC.glob('*.cu'))
    host_sources = [] if args.no_host else sorted(CUDA_SRC.glob('*.cpp')) + [SRC / 'dcnv3_api.cpp']
    includes, defines, nvcc_common = torch_flags()
    cxx = os.environ.get('CXX', 'c++')
    std = torch_cxx_standard()
    arch_names = ', '.join('sm_' + a for a in archs)
    print(f'check_cuda_compile: nvcc {release} ({nvcc}), archs {arch_names}, '
          f'{len(cuda_sources)} .cu + {len(host_sources)} host source(s), {std}, '
          f'{args.jobs} job(s)')

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='dcnv3_cuda_check_') as tmp:
        out_dir = Path(tmp)
        jobs = []
        gencode = []
        for arch in archs:
            gencode += ['-gencode', f'arch=compute_{arch},code=sm_{arch}']
        for src in cuda_sources:
            obj = out_dir / (src.stem + '.cu.o')
            cmd = [nvcc, '-c', str(src), '-o', str(obj), std, '-O3', '-lineinfo',
                   '-Xcompiler', '-fPIC', *nvcc_common, *defines, *includes, f'-I{SRC}',
                   *gencode]
            jobs.append(Job(f'nvcc {src.relative_to(REPO_ROOT)}', cmd, obj))
        for src in host_sources:
            obj = out_dir / (src.stem + '.o')
            cmd = [cxx, '-c', str(src), '-o', str(obj), std, '-O2', '-fPIC', '-Wall',
                   '-Wextra', '-Wno-unknown-pragmas', *defines, *includes,
                   '-isystem', str(cuda_include), f'-I{SRC}']
            label = f'{Path(cxx).name} {src.relative_to(REPO_ROOT)} (-DWITH_CUDA)'
            jobs.append(Job(label, cmd, obj))

        failed, warned = 0, 0
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for job in pool.map(Job.run, jobs):
                warnings = own_warnings(job.output)
                status = 'ok' if job.rc == 0 else 'ERROR'
                print(f'  {status:<5} {job.label}  [{job.seconds:.1f} s, '
                      f'{len(warnings)} warning(s)]')
                if job.rc != 0 or warnings:
                    print('\n'.join('      ' + line for line in job.output.splitlines()))
                failed += job.rc != 0
                warned += bool(warnings)

        if not failed and host_sources:
            missing, n_needed = check_symbols([j.obj for j in jobs if j.obj is not None])
            if missing:
                failed += 1
                print('  ERROR undefined DCNv3 symbols at link time:')
                print('\n'.join('      ' + m for m in missing))
            else:
                print(f'  ok    symbols: the {n_needed} CUDA-side DCNv3 functions the objects call '
                      'are all defined')

        if args.emulate and not failed:
            failed += run_emulator(cxx, includes, out_dir)

    seconds = time.perf_counter() - start
    if failed or (args.werror and warned):
        print(f'check_cuda_compile: FAILED ({failed} error(s), {warned} file(s) with warnings) '
              f'in {seconds:.0f} s')
        return 1
    print(f'check_cuda_compile: OK ({warned} file(s) with warnings) in {seconds:.0f} s')
    return 0


def run_emulator(cxx: str, includes: List[str], out_dir: Path) -> int:
    src = EMULATE_DIR / 'emu_main.cpp'
    exe = out_dir / 'dcnv3_emulate'
    cmd = [cxx, str(src), '-o', str(exe), '-std=c++20', '-O1', '-g',
           '-fsanitize=address,undefined', '-fno-sanitize-recover=undefined',
           '-Wall', '-Wextra', '-Wno-unknown-pragmas', *includes, f'-I{EMULATE_DIR}',
           f'-I{CUDA_SRC}', f'-I{SRC}', '-pthread']
    label = f'{Path(cxx).name} {src.relative_to(REPO_ROOT)} (host SIMT emulation)'
    job = Job(label, cmd, None).run()
    print(f'  {"ok" if job.rc == 0 else "ERROR":<5} {job.label}  [{job.seconds:.1f} s]')
    if job.rc != 0:
        print('\n'.join('      ' + line for line in job.output.splitlines()))
        return 1
    start = time.perf_counter()
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    shown = [line for line in lines if not line.startswith('ok ')]
    print(f'  {"ok" if proc.returncode == 0 else "ERROR":<5} emulated kernels '
          f'[{time.perf_counter() - start:.1f} s]: {len(lines) - len(shown)} run(s) ok')
    print('\n'.join('      ' + line for line in shown))
    return int(proc.returncode != 0)


if __name__ == '__main__':
    sys.exit(main())
