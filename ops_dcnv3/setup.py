"""Build ops_dcnv3: the CPU kernel always, CUDA when a toolkit is found and a
GPU is visible or FORCE_CUDA=1. Needs torch only, and GCC or Clang (the CPU
kernel is written with GNU vector extensions).

    pip install --no-build-isolation -e ops_dcnv3     # from the repo root
    python setup.py build_ext --inplace                # from this folder
"""
import glob
import os
import re
import subprocess

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))
# Used when no GPU is visible to pick from: V100 (7.0) through H100 (9.0), plus
# PTX for newer GPUs. CUDA 13 dropped sm_70 (Volta), so from CUDA 13 on the
# list starts at T4/Turing (7.5).
DEFAULT_CUDA_ARCHS = '7.0;7.5;8.0;8.6;8.9;9.0+PTX'
DEFAULT_CUDA_ARCHS_CUDA13 = '7.5;8.0;8.6;8.9;9.0+PTX'


def want_cuda() -> bool:
    """CUDA kernels are built with a CUDA torch and toolkit, and a visible GPU
    or FORCE_CUDA=1."""
    force = os.environ.get('FORCE_CUDA', '0') == '1'
    if torch.version.cuda is None or CUDA_HOME is None:
        if force:
            print('ops_dcnv3: FORCE_CUDA=1 but torch has no CUDA or no toolkit '
                  'was found; building the CPU kernel only')
        return False
    return force or torch.cuda.is_available()


def cuda_toolkit_version():
    """((major, minor), source) of the toolkit that compiles the kernels: from
    `nvcc --version` of torch's CUDA_HOME, else torch.version.cuda."""
    if CUDA_HOME is not None:
        nvcc = os.path.join(CUDA_HOME, 'bin', 'nvcc')
        try:
            out = subprocess.run([nvcc, '--version'], capture_output=True, text=True,
                                 check=True).stdout
            m = re.search(r'release (\d+)\.(\d+)', out)
            if m:
                return (int(m.group(1)), int(m.group(2))), nvcc + ' --version'
        except (OSError, subprocess.CalledProcessError):
            pass
    if torch.version.cuda:
        major, minor = torch.version.cuda.split('.')[:2]
        return (int(major), int(minor)), 'torch.version.cuda'
    return None, 'unknown'


def default_cuda_archs() -> str:
    """TORCH_CUDA_ARCH_LIST for a build without a visible GPU; prints why."""
    version, source = cuda_toolkit_version()
    shown = '.'.join(map(str, version)) if version else 'unknown'
    if version is not None and version >= (13, 0):
        archs = DEFAULT_CUDA_ARCHS_CUDA13
        why = 'CUDA >= 13 has no sm_70 (Volta): T4 (7.5) through H100 (9.0) + PTX'
    else:
        archs = DEFAULT_CUDA_ARCHS
        why = 'CUDA < 13: V100 (7.0) through H100 (9.0) + PTX'
    print(f'ops_dcnv3: no GPU visible and TORCH_CUDA_ARCH_LIST unset; CUDA {shown} '
          f'(from {source}): using TORCH_CUDA_ARCH_LIST={archs} ({why})')
    return archs


def make_extension():
    src = os.path.join(HERE, 'src')
    # The op (checks, registration, binding), its Autograd and Autocast
    # kernels, and the CPU kernels.
    sources = sorted(glob.glob(os.path.join(src, '*.cpp')))
    for folder in ('autograd', 'autocast', 'cpu'):
        sources += sorted(glob.glob(os.path.join(src, folder, '*.cpp')))
    # -fopenmp: at::parallel_for expands to an OpenMP pragma in ATen's headers.
    # -ffp-contract=fast: a * b + c becomes one FMA (ISO C++ mode turns it off).
    # -Wno-psabi: the 32-byte vector types never cross a call boundary.
    # No -std here: torch's BuildExtension gives the C++ compiler and nvcc the
    # standard its headers are built for (C++17 up to torch 2.12, C++20 from
    # 2.13; torch 2.14's headers refuse C++17). Naming one overrides that for
    # our translation units only, and every inline function of torch's headers
    # they share with libtorch is then compiled under two standards.
    cxx_flags = ['-O3', '-fopenmp', '-ffp-contract=fast', '-Wno-psabi']
    if not want_cuda():
        print('ops_dcnv3: building the CPU kernel')
        return CppExtension('ops_dcnv3._C', sources, include_dirs=[src],
                            extra_compile_args={'cxx': cxx_flags},
                            extra_link_args=['-fopenmp'])
    if not torch.cuda.is_available() and not os.environ.get('TORCH_CUDA_ARCH_LIST'):
        os.environ['TORCH_CUDA_ARCH_LIST'] = default_cuda_archs()
    print('ops_dcnv3: building the CPU and CUDA kernels, TORCH_CUDA_ARCH_LIST='
          + os.environ.get('TORCH_CUDA_ARCH_LIST', '(the visible GPUs)'))
    # Kernels (.cu, nvcc) and their host-side launchers (.cpp, C++ compiler).
    sources += sorted(glob.glob(os.path.join(src, 'cuda', '*.cu')))
    sources += sorted(glob.glob(os.path.join(src, 'cuda', '*.cpp')))
    # No --use_fast_math: the kernels have no transcendental functions, and
    # flushing denormals would change small gradients.
    nvcc_flags = ['-O3', '-lineinfo']
    return CUDAExtension('ops_dcnv3._C', sources, include_dirs=[src],
                         define_macros=[('WITH_CUDA', None)],
                         extra_compile_args={'cxx': cxx_flags, 'nvcc': nvcc_flags},
                         extra_link_args=['-fopenmp'])


setup(
    name='ops_dcnv3',
    version='1.0.0',
    description='DCNv3 deformable convolution: CPU and CUDA kernels, a '
                'pure-PyTorch path and the DCNv3 module',
    packages=['ops_dcnv3', 'ops_dcnv3.functions', 'ops_dcnv3.modules', 'ops_dcnv3.testing'],
    package_dir={'ops_dcnv3': '.'},
    ext_modules=[make_extension()],
    cmdclass={'build_ext': BuildExtension},
    python_requires='>=3.8',
    install_requires=['torch'],
)
