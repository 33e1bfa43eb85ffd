"""mmdet's runtime with what every InternImage detection config needs.

mmdet's ``default_runtime.py`` plus ``internimage_runtime.py``
(``custom_imports``, ``StrictLoadRunner``, ``RNGStateHook``) and the
checkpoint hook: every epoch, the last three and the best kept, written
atomically.
"""
_base_ = [
    'mmdet::_base_/default_runtime.py',
    './internimage_runtime.py',
]
# local_atomic: checkpoints are written to a temporary file and renamed, so a
# kill never leaves a partial epoch_N.pth (local work dirs; drop it for s3://).
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto',
                    backend_args=dict(backend='local_atomic')))
