"""InternImage for OpenMMLab 2.0: the backbone (registered as ``InternImage``
for mmdet and mmseg) and its layer-wise lr decay optimizer constructor.

Use from a config with::

    custom_imports = dict(
        imports=['projects.internimage', 'projects.internimage.compat'],
        allow_failed_imports=False)

Importing this package patches nothing; importing
``projects.internimage.compat`` applies the fixes for the released
OpenMMLab stack on current PyTorch and setuptools (see README.md).
"""
from .arch_settings import ARCH_SETTINGS, get_arch
from .backbone import InternImage
from .checkpoint import load_pretrained
from .layer_decay import InternImageLayerDecayOptimizerConstructor
from .model_checks import check_neck_in_channels
from .registry import register_backbone

register_backbone()

__all__ = [
    'InternImage', 'InternImageLayerDecayOptimizerConstructor', 'ARCH_SETTINGS',
    'get_arch', 'load_pretrained', 'register_backbone', 'check_neck_in_channels'
]
