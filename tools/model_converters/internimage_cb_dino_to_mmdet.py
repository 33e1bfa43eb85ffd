"""Convert a reference (OpenGVLab/InternImage, mmdet 2.x) DINO +
CB-InternImage checkpoint (e.g. ``dino_4scale_cbinternimage_h_objects365_coco.pth``)
to this project's mmdet 3.x ``CBDINO`` layout.

Usage::

    python tools/model_converters/internimage_cb_dino_to_mmdet.py IN OUT

The file is read by the project's safe checkpoint reader (CRC and NaN/inf
checks); every key is mapped by the rules of
``projects/internimage/checkpoint/converters/cb_dino.py`` (the reference's
DINO rules, its one-element neck list ``neck.0.*`` as ``neck.*``); a key
that does not map is an error naming it, and nothing is written. The output
keeps the input's ``meta`` and drops its optimizer state. The configs also
load reference files as they are (converted in memory). Plain DINO
checkpoints (T, L, H): ``internimage_dino_to_mmdet.py``. The body (command
line included) is ``projects.internimage.checkpoint.converters``.
"""
from projects.internimage.checkpoint.converters import main

if __name__ == '__main__':
    main('cb_dino')
