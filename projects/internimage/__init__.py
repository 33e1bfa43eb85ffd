"""InternImage for OpenMMLab 2.0: the backbone (registered as ``InternImage``
for mmdet and mmseg), its layer-wise lr decay optimizer constructor, the
reference's DINO head (``InternImageDINOHead``, mmdet), DINO + CB-InternImage
(``CBInternImage``, ``CBChannelMapper``, ``CBDINOHead``, ``CBDINO``, mmdet)
and a runner that refuses checkpoints which do not fit the model
(``StrictLoadRunner``).

Use from a config with::

    custom_imports = dict(
        imports=['projects.internimage', 'projects.internimage.compat'],
        allow_failed_imports=False)

Importing this package patches nothing; importing
``projects.internimage.compat`` applies the fixes for the released
OpenMMLab stack on current PyTorch and setuptools (see README.md).
"""
from . import engine  # noqa: F401  (registers RNGStateHook and the local_atomic backend)
from .arch_settings import ARCH_SETTINGS, get_arch
from .backbone import InternImage
from .cb_internimage import CBInternImage
from .checkpoint import load_pretrained
from .cpu_amp import CPUAmpOptimWrapper
from .cpu_ddp import CPUDistributedDataParallel
from .flops import register_dcnv3_flop_handle
from .layer_decay import InternImageLayerDecayOptimizerConstructor
from .model_checks import check_neck_in_channels
from .registry import register_backbone
from .strict_load import StrictLoadRunner

register_backbone()
# mmengine's FLOP counter (mmdet/mmseg get_flops.py) counts ops_dcnv3::dcnv3
register_dcnv3_flop_handle()

try:  # the DINO head needs mmdet (segmentation-only installs have none)
    from .dino_head import InternImageDINOHead  # noqa: F401  (registers it)
    # DINO + CB-InternImage: CBInternImage, CBChannelMapper, CBDINOHead, CBDINO
    from . import cb_dino  # noqa: F401  (registers them)
except ModuleNotFoundError as exc:
    if exc.name != 'mmdet':  # installed but broken: say so
        raise

__all__ = [
    'InternImage', 'CBInternImage', 'InternImageLayerDecayOptimizerConstructor', 'ARCH_SETTINGS',
    'get_arch', 'load_pretrained', 'register_backbone', 'check_neck_in_channels',
    'StrictLoadRunner', 'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'register_dcnv3_flop_handle'
]
