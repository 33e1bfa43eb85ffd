"""Access to the compiled extension ``ops_dcnv3._C``."""
from types import ModuleType
from typing import List, Optional

import torch  # noqa: F401  (loads the libraries the extension links to)

try:
    from . import _C as _compiled
    _IMPORT_ERROR: Optional[BaseException] = None
except ImportError as exc:  # not built: the pure-PyTorch path still works
    _compiled = None
    _IMPORT_ERROR = exc


def compiled_available() -> bool:
    """Whether the compiled kernels (at least the CPU one) are built."""
    return _compiled is not None


def compiled_with_cuda() -> bool:
    """Whether the compiled extension has CUDA kernels."""
    return _compiled is not None and bool(_compiled.with_cuda())


def ext() -> ModuleType:
    """The compiled extension; a clear error when it was not built."""
    if _compiled is None:
        raise RuntimeError(
            'ops_dcnv3: the compiled op is not built (' + str(_IMPORT_ERROR) +
            '). Build it with `pip install --no-build-isolation -e ops_dcnv3` '
            "or use the pure-PyTorch path (core_op='DCNv3_pytorch').")
    return _compiled


def cpu_isa() -> str:
    """Instruction set the compiled CPU kernels run with: ``'avx2'`` (AVX2 +
    FMA) or ``'baseline'``. The best one this CPU supports is used unless the
    ``DCNV3_CPU_ISA`` environment variable names another."""
    return ext().cpu_isa()


def supported_cpu_isas() -> List[str]:
    """Instruction sets this build and this CPU can run the CPU kernels with."""
    return list(ext().supported_cpu_isas())


def set_cpu_isa(name: str) -> str:
    """Runs the CPU kernels with instruction set ``name`` from now on (for
    tests and benchmarks); returns the previous one. ValueError for a name
    that is unknown or not supported here."""
    previous = cpu_isa()
    ext().set_cpu_isa(name)
    return previous
