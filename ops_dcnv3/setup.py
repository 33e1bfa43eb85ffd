"""Build ops_dcnv3: the CPU kernel always, CUDA when a toolkit is found and a
GPU is visible or FORCE_CUDA=1. Needs torch only.

    pip install --no-build-isolation -e ops_dcnv3     # from the repo root
    python setup.py build_ext --inplace                # from this folder
"""
import glob
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))
# V100 (7.0) through H100 (9.0), used when no GPU is visible to pick from.
DEFAULT_CUDA_ARCHS = '7.0;7.5;8.0;8.6;8.9;9.0+PTX'


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


def make_extension():
    src = os.path.join(HERE, 'src')
    sources = [os.path.join(src, 'dcnv3_api.cpp')] + sorted(
        glob.glob(os.path.join(src, 'cpu', '*.cpp')))
    cxx_flags = ['-O3', '-fopenmp-simd', '-std=c++17']
    if not want_cuda():
        print('ops_dcnv3: building the CPU kernel')
        return CppExtension('ops_dcnv3._C', sources, include_dirs=[src],
                            extra_compile_args={'cxx': cxx_flags})
    if not torch.cuda.is_available() and not os.environ.get('TORCH_CUDA_ARCH_LIST'):
        os.environ['TORCH_CUDA_ARCH_LIST'] = DEFAULT_CUDA_ARCHS
    print('ops_dcnv3: building the CPU and CUDA kernels, TORCH_CUDA_ARCH_LIST='
          + os.environ.get('TORCH_CUDA_ARCH_LIST', '(the visible GPUs)'))
    sources += sorted(glob.glob(os.path.join(src, 'cuda', '*.cu')))
    nvcc_flags = ['-O3', '-std=c++17', '--use_fast_math', '-lineinfo']
    return CUDAExtension('ops_dcnv3._C', sources, include_dirs=[src],
                         define_macros=[('WITH_CUDA', None)],
                         extra_compile_args={'cxx': cxx_flags, 'nvcc': nvcc_flags})


setup(
    name='ops_dcnv3',
    version='1.0.0',
    description='DCNv3 deformable convolution: CPU and CUDA kernels, a '
                'pure-PyTorch path and the DCNv3 module',
    packages=['ops_dcnv3', 'ops_dcnv3.functions', 'ops_dcnv3.modules'],
    package_dir={'ops_dcnv3': '.'},
    ext_modules=[make_extension()],
    cmdclass={'build_ext': BuildExtension},
    python_requires='>=3.8',
    install_requires=['torch'],
)
