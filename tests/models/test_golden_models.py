"""Whole models against the reference: Mask R-CNN, Cascade Mask R-CNN,
DINO and UperNet (tiny versions, ``tests/data/golden/models``).

Each family's port config, with the golden's overrides, loads the golden
weights strictly (DINO through the reference-checkpoint converter), runs the
golden input and is compared stage by stage, for both core ops. Tolerances
are the golden README's: *rel* is max|port - golden| / max|golden|; the
detections are matched to the golden's without assuming their order.
"""
import pytest
import torch

from tests.helpers import core_op_params, max_rel_err, require_compiled_if_built
from tests.models.golden_models import (compare_maps, load_model_golden, match_rows, run_golden,
                                        unpack_masks)

#: The golden README's tolerances.
TOL = {
    'mask_rcnn': dict(maps=1e-5, mask_logits=1e-4, proposals=1e-3, box=1e-3, score=1e-5,
                      mask_iou=0.99, mask_pixels=20),
    'cascade': dict(maps=1e-4, mask_logits=1e-4, proposals=5e-3, box=5e-3, score=1e-5,
                    mask_iou=0.99, mask_pixels=20),
    'dino': dict(maps=3e-5, intermediates=3e-5, box=1e-3, score=1e-6),
    'upernet': dict(maps=1e-5, logits=1e-5),
}
#: Per-family stage maps compared with the ``maps`` tolerance.
MAPS = {'mask_rcnn': ('backbone', 'neck'), 'cascade': ('backbone', 'neck'),
        'dino': ('backbone', 'neck'), 'upernet': ('backbone',)}
DETECTORS = ('mask_rcnn', 'cascade', 'dino')
TWO_STAGE = ('mask_rcnn', 'cascade')
DINO_INTERMEDIATES = ('encoder_memory', 'enc_topk_score', 'enc_topk_anchor',
                      'decoder_hidden_states', 'decoder_references', 'all_cls_scores',
                      'all_bbox_preds')


@pytest.fixture(params=core_op_params())
def core_op(request):
    require_compiled_if_built(request.param)
    return request.param


def run(family, core_op):
    golden, out, _ = run_golden(family, core_op)
    return golden['outputs'], out


def matched(family, core_op):
    """Golden and port detections, port rows in the golden's order."""
    ref, out = run(family, core_op)
    rows = match_rows(ref['det_bboxes'], ref['det_labels'], out['det_bboxes'], out['det_labels'])
    missing = [i for i, r in enumerate(rows) if r < 0]
    assert not missing, f'golden detections {missing[:10]} have no port detection of their label'
    return ref, out, torch.tensor(rows)


@pytest.mark.parametrize('family', list(TOL))
def test_data_preprocessor_gives_golden_input(family):
    """The config's data preprocessor turns the raw BGR image into exactly
    the reference's normalised input."""
    golden = load_model_golden(family)
    _, _, model = run_golden(family, 'DCNv3_pytorch')
    if family == 'upernet':
        from mmseg.structures import SegDataSample as Sample
    else:
        from mmdet.structures import DetDataSample as Sample
    raw = golden['inputs']['raw_image_bgr'].permute(2, 0, 1).contiguous()
    data = model.data_preprocessor(
        dict(inputs=[raw], data_samples=[Sample(metainfo=golden['inputs']['metainfo'])]),
        training=False)
    assert torch.equal(data['inputs'], golden['inputs']['img'])


@pytest.mark.parametrize('family', list(TOL))
def test_stage_maps(family, core_op):
    ref, out = run(family, core_op)
    for stage in MAPS[family]:
        errs = compare_maps(out[stage], ref[stage])
        assert max(errs) <= TOL[family]['maps'], f'{stage}: rel errors {errs}'


@pytest.mark.parametrize('family', DETECTORS)
def test_detections(family, core_op):
    """All golden detections are found, same label, boxes and scores close."""
    ref, out, rows = matched(family, core_op)
    assert len(out['det_bboxes']) == len(ref['det_bboxes']) == 100
    assert torch.equal(out['det_labels'][rows], ref['det_labels'])
    box = (out['det_bboxes'][rows] - ref['det_bboxes']).abs().max().item()
    score = (out['det_scores'][rows] - ref['det_scores']).abs().max().item()
    assert box <= TOL[family]['box'], f'max |box difference| {box:.2e} px'
    assert score <= TOL[family]['score'], f'max |score difference| {score:.2e}'


@pytest.mark.parametrize('family', TWO_STAGE)
def test_proposals(family, core_op):
    ref, out = run(family, core_op)
    ref_p, out_p = ref['proposals'], out['proposals']
    assert out_p.shape == ref_p.shape, f'{tuple(out_p.shape)} vs golden {tuple(ref_p.shape)}'
    zeros = torch.zeros(len(ref_p), dtype=torch.long)
    rows = match_rows(ref_p[:, :4], zeros, out_p[:, :4], zeros)
    err = (out_p[torch.tensor(rows)] - ref_p).abs().max().item()
    assert err <= TOL[family]['proposals'], f'max |proposal difference| {err:.2e}'


@pytest.mark.parametrize('family', TWO_STAGE)
def test_masks(family, core_op):
    ref, out, rows = matched(family, core_op)
    ref_masks, masks = unpack_masks(ref), out['det_masks'][rows]
    assert masks.shape == ref_masks.shape
    inter = (masks & ref_masks).flatten(1).sum(1).double()
    union = (masks | ref_masks).flatten(1).sum(1).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    differing = int((masks ^ ref_masks).sum())
    assert iou.min() >= TOL[family]['mask_iou'], f'min mask IoU {iou.min():.4f}'
    assert differing <= TOL[family]['mask_pixels'], f'{differing} mask pixels differ'


@pytest.mark.parametrize('family', TWO_STAGE)
def test_mask_logits(family, core_op):
    """The 28x28 mask logits of the 10 best detections, every mask head."""
    ref, out, rows = matched(family, core_op)
    heads = sorted(k for k in ref if k.endswith('_pred_at_label_top10'))
    assert heads and len(heads) == len([k for k in out if k.endswith('_pred')])
    for key in heads:
        logits = out[key.replace('_at_label_top10', '')]
        top = rows[:10]
        mine = logits[top, ref['det_labels'][:10]]
        err = max_rel_err(mine, ref[key])
        assert err <= TOL[family]['mask_logits'], f'{key}: rel {err:.2e}'


@pytest.mark.parametrize('name', DINO_INTERMEDIATES)
def test_dino_intermediates(name, core_op):
    """Encoder memory, two-stage query selection, every decoder layer."""
    ref, out = run('dino', core_op)
    assert tuple(out[name].shape) == tuple(ref[name].shape)
    err = max_rel_err(out[name], ref[name])
    assert err <= TOL['dino']['intermediates'], f'{name}: rel {err:.2e}'


def test_upernet_logits_and_seg_map(core_op):
    ref, out = run('upernet', core_op)
    for name in ('decode_head_logits', 'seg_logits_sub'):
        assert tuple(out[name].shape) == tuple(ref[name].shape)
        err = max_rel_err(out[name], ref[name])
        assert err <= TOL['upernet']['logits'], f'{name}: rel {err:.2e}'
    pred, ref_pred = out['seg_pred'], ref['seg_pred'].long()
    assert pred.shape == ref_pred.shape
    # only pixels whose two best logits are within 1e-3 may flip
    may_flip = torch.zeros_like(pred, dtype=torch.bool)
    yx = ref['seg_top2_gap_below_1e-3_yx'].long()
    may_flip[yx[:, 0], yx[:, 1]] = True
    flipped = (pred != ref_pred) & ~may_flip
    assert not flipped.any(), \
        f'{int(flipped.sum())} pixels differ: {flipped.nonzero()[:5].tolist()}'


def test_dino_num_feats_patch_is_restored(core_op):
    """The tiny DINO's reference-encoding patch lives only during its run."""
    from mmdet.models.layers.transformer import dino_layers, utils
    run('dino', core_op)
    assert dino_layers.coordinate_to_encoding is utils.coordinate_to_encoding
