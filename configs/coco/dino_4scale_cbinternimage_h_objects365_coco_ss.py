"""DINO 4-scale + CB-InternImage-H (two InternImage-H composed as in
CBNetV2), pre-trained on Objects365, fine-tuned on COCO; single-scale test.

Published results, size and checkpoints: ``configs/metafile.yml``; the
FLOPs counted here and the training memory, estimated without a GPU (it
fits an 80 GB A100): ``docs/model_zoo.md``.

The recipe is the DINO-H one (``dino_4scale_internimage_h_objects365_coco_ss.py``:
schedule, lr, layer decay, 900 queries, 1000 denoising queries, multi-scale
training, test at short side 1000, activation checkpointing), with:

- ``CBInternImage``: an assisting and a lead InternImage-H, every stage of
  the assisting one fed into the lead one
  (``projects/internimage/models/cb_internimage.py``);
- ``CBChannelMapper`` and ``CBDINO`` / ``CBDINOHead``: in training DINO's
  losses are computed on both backbones' features, the assisting one's with
  weight 0.5; at test time on the lead backbone's alone;
- ``load_from`` the published Objects365 model (80 COCO classes).

Layer decay: the reference's rule gives no layer id to the composite's
parameters (it only knows ``backbone.levels.*``), so the whole composite
backbone trains at the full lr; ``CBInternImage.get_layer_depth`` keeps that.

The published checkpoints are in the reference's own (mmdet 2.x) layout:
given as ``load_from`` or to ``tools/test.py`` they are converted on
loading; ``tools/model_converters/internimage_cb_dino_to_mmdet.py`` writes a
converted file. Multi-scale + flip test: the ``_ms`` config with
``tools/test.py ... --tta``.
"""
_base_ = ['./dino_4scale_internimage_h_objects365_coco_ss.py']

load_from = ('https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
             'dino_4scale_cbinternimage_h_objects365_80classes.pth')
model = dict(
    type='CBDINO',
    backbone=dict(type='CBInternImage'),
    neck=dict(type='CBChannelMapper'),
    bbox_head=dict(type='CBDINOHead', cb_first_weight=0.5))
