"""Write the backbone weights of a detector's or a segmentor's checkpoint as
a pretrained-backbone checkpoint.

Example (how ``demo/pretrained/internimage_demo_backbone.pth`` is made; see
``demo/pretrained/README.md``)::

    python tools/model_converters/extract_backbone.py \\
        work_dirs/demo_pretrain/iter_1000.pth \\
        demo/pretrained/internimage_demo_backbone.pth

The file is read by the project's safe checkpoint reader (CRC and NaN/inf
checks); the weights under ``backbone.`` (``--prefix``) are written without
the prefix under ``state_dict``, with the source's name and training
progress under ``meta``; the other modules, the optimizer state and the
config text are dropped. A config loads the result with
``init_cfg=dict(type='Pretrained', checkpoint=OUT)``. The body is
``projects.internimage.checkpoint.extract``.
"""
from projects.internimage.checkpoint.extract import main

if __name__ == '__main__':
    main()
