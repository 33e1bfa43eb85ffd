"""The InternImage models: the backbone (``InternImage``, registered in
mmengine's root ``MODELS`` registry, which the mmdet and mmseg registries
search), its blocks and layers, the table of published variants, the
reference's DINO head (``InternImageDINOHead``, mmdet), DINO +
CB-InternImage (the composite backbone ``CBInternImage``, root ``MODELS``;
``CBChannelMapper``, ``CBDINOHead`` and ``CBDINO``, mmdet) and the
whole-model config checks."""
from .arch_settings import ARCH_KEYS, ARCH_SETTINGS, DEFAULT_ARCH, get_arch, resolve_arch
from .backbone import InternImage
from .cb_internimage import CBInternImage
from .model_checks import backbone_out_channels, check_neck_in_channels

try:  # the DINO head needs mmdet (segmentation-only installs have none)
    from .dino_head import InternImageDINOHead  # noqa: F401  (registers it)
    # DINO + CB-InternImage's detector, neck and head
    from .cb_dino import CBChannelMapper, CBDINO, CBDINOHead  # noqa: F401  (registers them)
except ModuleNotFoundError as exc:
    if exc.name != 'mmdet':  # installed but broken: say so
        raise

__all__ = ['InternImage', 'CBInternImage', 'ARCH_KEYS', 'ARCH_SETTINGS', 'DEFAULT_ARCH',
           'get_arch', 'resolve_arch', 'backbone_out_channels', 'check_neck_in_channels']
