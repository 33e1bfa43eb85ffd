"""DCNv3, the deformable convolution of InternImage.

Drop-in for the reference package's API: ``ops_dcnv3.functions.DCNv3Function``,
``ops_dcnv3.functions.dcnv3_core_pytorch``, ``ops_dcnv3.modules.DCNv3`` and
``ops_dcnv3.modules.DCNv3_pytorch``.

Importing it registers the PyTorch operators ``torch.ops.ops_dcnv3.dcnv3``
and ``torch.ops.ops_dcnv3.dcnv3_backward``: their kernels in C++ by the
compiled extension, their fake kernels in ``ops_dcnv3.functions.library``;
``dcnv3_op`` calls the first.
"""
from ._ext import (compiled_available, compiled_with_cuda, cpu_isa, set_cpu_isa,
                   supported_cpu_isas)
from .functions import DCNv3Function, dcnv3_core_pytorch, dcnv3_op
from .modules import DCNv3, DCNv3_pytorch

__all__ = ['DCNv3Function', 'dcnv3_op', 'dcnv3_core_pytorch', 'DCNv3', 'DCNv3_pytorch',
           'compiled_available', 'compiled_with_cuda', 'cpu_isa', 'set_cpu_isa',
           'supported_cpu_isas']
