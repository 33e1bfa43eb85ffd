"""Convert a reference (OpenGVLab/InternImage, mmdet 2.x) DINO checkpoint to
this project's mmdet 3.x ``DINO`` layout.

Usage::

    python tools/model_converters/internimage_dino_to_mmdet.py IN OUT

The file is read by the project's safe checkpoint reader (CRC and NaN/inf
checks); every key is mapped by the rules of
``projects/internimage/checkpoint/converters/dino.py``; a key that does not
map is an error naming it, and nothing is written. The output keeps the
input's ``meta`` and drops its optimizer state. The configs also load
reference files as they are (converted in memory), so converting once only
saves that step. The body (command line included) is
``projects.internimage.checkpoint.converters``,
shared with ``internimage_mask2former_to_mmseg.py``.
"""
from projects.internimage.checkpoint.converters import main

if __name__ == '__main__':
    main('dino')
