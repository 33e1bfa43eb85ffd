"""mmseg's runtime with what every InternImage segmentation config needs.

mmseg's ``default_runtime.py`` plus ``internimage_runtime.py``
(``custom_imports``, ``StrictLoadRunner``, ``RNGStateHook``). The
project's checkpoint hook is not here: mmseg keeps ``default_hooks`` in its
schedule files, and mmengine refuses a key that two bases both define, so
the root segmentation configs set it beside their checkpoint interval
(``tests/configs`` checks that every config resolves to it)::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))
"""
_base_ = [
    'mmseg::_base_/default_runtime.py',
    './internimage_runtime.py',
]
