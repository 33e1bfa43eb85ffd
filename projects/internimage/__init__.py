"""InternImage for OpenMMLab 2.0, grouped by role:

- :mod:`.models`: the backbone (``InternImage``, registered in mmengine's
  root ``MODELS`` registry, which the mmdet and mmseg registries search),
  its blocks, the variants table, the reference's DINO head
  (``InternImageDINOHead``, mmdet), DINO + CB-InternImage (the composite
  backbone ``CBInternImage``, root ``MODELS``; ``CBChannelMapper``,
  ``CBDINOHead`` and ``CBDINO``, mmdet) and whole-model config checks;
- :mod:`.checkpoint`: safe checkpoint reading, pretrained loading, the
  runner that refuses checkpoints which do not fit (``StrictLoadRunner``)
  and the reference-format converters;
- :mod:`.engine`: the layer-wise lr decay optimizer constructor, exact
  resume (``RNGStateHook``), atomic checkpoint writes (``local_atomic``),
  CPU mixed precision and CPU data parallelism;
- :mod:`.datasets`: data checks (the annotations, images and label maps a
  run would drop or misread; ``DataCheckHook``; errors naming the file);
- :mod:`.apis`: what the tools do (config loading, command-line options,
  runner building, distributed set-up, FLOP counting, ONNX export,
  synthetic data, drawing predictions);
- :mod:`.compat`: the fixes for the released OpenMMLab stack on current
  PyTorch and setuptools.

Use from a config with::

    custom_imports = dict(
        imports=['projects.internimage', 'projects.internimage.compat'],
        allow_failed_imports=False)

Importing this package registers its modules and patches nothing; importing
``projects.internimage.compat`` (or calling ``compat.apply()``, as the tools
do) applies the fixes (see README.md).
"""
from .checkpoint import StrictLoadRunner, load_pretrained
from .datasets import DataCheckHook
from .engine import (CPUAmpOptimWrapper, CPUDistributedDataParallel,
                     InternImageLayerDecayOptimizerConstructor)
from .models import ARCH_SETTINGS, CBInternImage, InternImage, check_neck_in_channels, get_arch

__all__ = [
    'InternImage', 'CBInternImage', 'InternImageLayerDecayOptimizerConstructor', 'ARCH_SETTINGS',
    'get_arch', 'load_pretrained', 'check_neck_in_channels',
    'StrictLoadRunner', 'CPUAmpOptimWrapper', 'CPUDistributedDataParallel', 'DataCheckHook'
]
