"""InternImage for OpenMMLab 2.0: the backbone (registered as ``InternImage``
for mmdet and mmseg) and its layer-wise lr decay optimizer constructor.

Use from a config with ``custom_imports=dict(imports=['projects.internimage'])``.
"""
from . import compat  # noqa: F401  (must come first)
from .arch_settings import ARCH_SETTINGS, get_arch
from .backbone import InternImage
from .checkpoint import load_pretrained
from .cpu_amp import CPUAmpOptimWrapper
from .cpu_ddp import CPUDistributedDataParallel
from .layer_decay import InternImageLayerDecayOptimizerConstructor
from .registry import register_backbone

register_backbone()

__all__ = [
    'InternImage', 'InternImageLayerDecayOptimizerConstructor', 'ARCH_SETTINGS',
    'get_arch', 'load_pretrained', 'register_backbone', 'CPUAmpOptimWrapper',
    'CPUDistributedDataParallel'
]
