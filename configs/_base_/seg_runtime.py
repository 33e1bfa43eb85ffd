"""mmseg's runtime with what every InternImage segmentation config needs.

mmseg's ``default_runtime.py`` plus ``internimage_runtime.py``
(``custom_imports``, ``StrictLoadRunner``, ``RNGStateHook``). The atomic
checkpoint backend is not here: mmseg keeps ``default_hooks`` in its schedule
files, and mmengine refuses a key that two bases both define, so a config
sets it beside its own checkpoint interval::

    default_hooks = dict(checkpoint=dict(
        ..., backend_args=dict(backend='local_atomic')))
"""
_base_ = [
    'mmseg::_base_/default_runtime.py',
    './internimage_runtime.py',
]
