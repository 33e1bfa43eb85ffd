"""What every InternImage config adds to its task's runtime.

``det_runtime.py`` and ``seg_runtime.py`` are mmdet's and mmseg's
``default_runtime.py`` plus this file; a config whose task base already
brings a ``default_runtime.py`` (the DINO configs, over mmdet's DINO config)
lists this file beside it instead (mmengine refuses a key that two bases
both define).
"""
# `projects.internimage.compat` applies the fixes for the released OpenMMLab
# stack on current PyTorch (checkpoint loading) and setuptools.
custom_imports = dict(
    imports=['projects.internimage', 'projects.internimage.compat'],
    allow_failed_imports=False)
# Refuses a checkpoint (load_from, resume, tools/test.py) that does not fit
# the model, instead of loading part of it (StrictLoadRunner).
runner_type = 'StrictLoadRunner'
# Exact resume: every rank's generator states go into the checkpoints.
# Data checks: dropped annotations reported (above 5%: an error naming the
# files), sample errors name their file, label maps checked.
custom_hooks = [dict(type='RNGStateHook'), dict(type='DataCheckHook')]
