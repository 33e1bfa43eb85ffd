"""DCNv3 modules (reference parameter names)."""
from .dcnv3 import DCNv3, DCNv3_pytorch
from .layers import build_act_layer, build_norm_layer

__all__ = ['DCNv3', 'DCNv3_pytorch', 'build_norm_layer', 'build_act_layer']
