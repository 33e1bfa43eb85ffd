"""DCNv3 modules (reference parameter names)."""
from .dcnv3 import DCNv3, DCNv3_pytorch
from .layers import act_layer_by_name, norm_layer_with_permutes

__all__ = ['DCNv3', 'DCNv3_pytorch', 'norm_layer_with_permutes', 'act_layer_by_name']
