"""Functional DCNv3: the compiled op and the pure-PyTorch path."""
from .dcnv3_func import DCNv3Function
from .dcnv3_pytorch import dcnv3_core_pytorch

__all__ = ['DCNv3Function', 'dcnv3_core_pytorch']
