"""InternImage for OpenMMLab 2.0: the backbone (registered as ``InternImage``
for mmdet and mmseg), its layer-wise lr decay optimizer constructor, the
reference's DINO head (``InternImageDINOHead``, mmdet) and a runner that
refuses checkpoints which do not fit the model (``StrictLoadRunner``).

Use from a config with::

    custom_imports = dict(
        imports=['projects.internimage', 'projects.internimage.compat'],
        allow_failed_imports=False)

Importing this package patches nothing; importing
``projects.internimage.compat`` applies the fixes for the released
OpenMMLab stack on current PyTorch and setuptools (see README.md).
"""
from .checkpoint import StrictLoadRunner, load_pretrained
from .engine import (CPUAmpOptimWrapper, CPUDistributedDataParallel,
                     InternImageLayerDecayOptimizerConstructor)
from .flops import register_dcnv3_flop_handle
from .models import ARCH_SETTINGS, InternImage, check_neck_in_channels, get_arch

# mmengine's FLOP counter (mmdet/mmseg get_flops.py) counts ops_dcnv3::dcnv3
register_dcnv3_flop_handle()

__all__ = [
    'InternImage', 'InternImageLayerDecayOptimizerConstructor', 'ARCH_SETTINGS',
    'get_arch', 'load_pretrained', 'check_neck_in_channels',
    'StrictLoadRunner', 'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'register_dcnv3_flop_handle'
]
