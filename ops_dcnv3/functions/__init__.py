"""Functional DCNv3: the registered compiled op and the pure-PyTorch path.

Importing this package completes the registration of
``torch.ops.ops_dcnv3.dcnv3`` and ``torch.ops.ops_dcnv3.dcnv3_backward``
(C++ kernels from the compiled extension, fake kernels from :mod:`.library`).
"""
from .dcnv3_func import DCNv3Function, dcnv3_op
from .dcnv3_pytorch import dcnv3_core_pytorch

__all__ = ['DCNv3Function', 'dcnv3_op', 'dcnv3_core_pytorch']
