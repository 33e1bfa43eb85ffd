"""Convert a reference Mask2Former + InternImage checkpoint (mmseg 0.x, e.g.
``mask2former_internimage_h_896_80k_cocostuff2ade20k.pth``) to this
project's mmseg 1.x layout.

Example::

    python tools/model_converters/internimage_mask2former_to_mmseg.py \\
        mask2former_internimage_h_896_80k_cocostuff2ade20k.pth \\
        mask2former_internimage_h_896_80k_cocostuff2ade20k_mmseg.pth

The file is read by the project's safe checkpoint reader (CRC and NaN/inf
checks); every key is renamed by the rules of
``projects/internimage/checkpoint/converters/mask2former.py``; a key that no
rule maps stops the conversion with an error naming it. The checkpoint's
``meta`` is kept; optimizer state is dropped. The configs load reference
files as they are too (``load_from``, ``tools/test.py CONFIG CKPT``); this
script writes the converted file once. The body is
``projects.internimage.checkpoint.convert_file``, shared with
``internimage_dino_to_mmdet.py``.
"""
from projects.internimage.checkpoint.converters import main

if __name__ == '__main__':
    main('mask2former')
