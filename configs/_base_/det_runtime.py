"""mmdet's runtime with what every InternImage detection config needs.

mmdet's ``default_runtime.py`` plus ``internimage_runtime.py``
(``custom_imports``, ``StrictLoadRunner``, ``RNGStateHook``) and the
checkpoint hook: every epoch, the last three and the best kept, by the
project's ``AtomicCheckpointHook`` (written atomically, then pointed to by
``last_checkpoint``, and only then are old ones removed).
"""
_base_ = [
    'mmdet::_base_/default_runtime.py',
    './internimage_runtime.py',
]
# AtomicCheckpointHook: a kill never leaves a partial checkpoint, nor loses
# the last complete one (new file first, then last_checkpoint, then removals).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
                    save_best='auto'))
