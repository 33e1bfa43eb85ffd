"""Mask2Former + InternImage-H on ADE20K (COCO-Stuff-164k pre-trained),
multi-scale + flip test.

The same model and training as
``mask2former_internimage_h_896_80k_cocostuff2ade20k_ss.py`` (single
scale); evaluated on the short sides 768, 832, 896, 960 and 1024 (long side
<= 4 x short), each with and without a horizontal flip, the class
probabilities averaged::

    python tools/test.py configs/ade20k/mask2former_internimage_h_896_80k_cocostuff2ade20k_ms.py \\
        mask2former_internimage_h_896_80k_cocostuff2ade20k.pth --tta

(mmseg 1.x runs multi-scale tests through its TTA model: ``--tta`` wraps the
model in ``tta_model`` and tests with ``tta_pipeline``.)
"""
_base_ = ['./mask2former_internimage_h_896_80k_cocostuff2ade20k_ss.py']

tta_model = dict(type='SegTTAModel')
