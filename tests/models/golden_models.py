"""Running the port's detectors / segmentor on the tiny whole-model goldens
(``tests/data/golden/models``, see its README.md) and comparing the outputs.

:func:`run_golden` builds the port's config with the golden's
``port_config_overrides``, loads the golden weights strictly (DINO through
the project's reference-checkpoint converter), feeds the golden input and
returns the outputs in the goldens' layout, stage by stage.
"""
import contextlib
import functools
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from tests.helpers import MODEL_GOLDEN_DIR, REPO_ROOT, load_golden, max_rel_err

#: The task package (registry scope) of each family.
SCOPES = {'mask_rcnn': 'mmdet', 'cascade': 'mmdet', 'dino': 'mmdet', 'upernet': 'mmseg'}


def load_model_golden(family: str) -> Dict[str, Any]:
    """The golden file of ``family`` (``{family}_tiny.pt``)."""
    return load_golden(f'{family}_tiny', directory=MODEL_GOLDEN_DIR)


def port_config(golden: Dict[str, Any], core_op: str) -> Config:
    """The port's config of the golden, with its tiny overrides and ``core_op``."""
    cfg = Config.fromfile(str(REPO_ROOT / golden['port_config']))
    cfg.merge_from_dict(golden['port_config_overrides'])
    cfg.model.backbone.core_op = core_op
    return cfg


def build_model(cfg: Config, scope: str) -> nn.Module:
    """The model of ``cfg`` from the ``scope`` registry, in eval mode."""
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS.build(cfg.model).eval()


def port_state_dict(golden: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The golden weights in the port's layout: as stored (Mask R-CNN,
    Cascade, UperNet), or converted from the reference layout (DINO)."""
    from projects.internimage.checkpoint.converters import convert_checkpoint
    checkpoint = convert_checkpoint({'state_dict': dict(golden['state_dict'])},
                                    f"{golden['family']}_tiny.pt")
    return checkpoint['state_dict']


@contextlib.contextmanager
def dino_num_feats(num_feats: int) -> Iterator[None]:
    """Make mmdet's DINO decoder encode its references with ``num_feats``
    features per coordinate, restoring mmdet afterwards.

    mmdet 3.3's ``DinoTransformerDecoder`` calls ``coordinate_to_encoding``
    with its default ``num_feats=128``, i.e. ``embed_dims // 2`` for
    ``embed_dims`` 256 only; the reference always uses ``embed_dims // 2``.
    Every published DINO has ``embed_dims`` 256, so the configs need
    nothing; the tiny golden model has 32 and needs 16.
    """
    from mmdet.models.layers.transformer import dino_layers, utils
    original = dino_layers.coordinate_to_encoding
    dino_layers.coordinate_to_encoding = functools.partial(
        utils.coordinate_to_encoding, num_feats=num_feats)
    try:
        yield
    finally:
        dino_layers.coordinate_to_encoding = original


class Recorder:
    """Records module outputs (forward hooks) and method results (wrapped
    methods) during one forward pass, each once; :meth:`close` undoes
    everything."""

    def __init__(self) -> None:
        self.out: Dict[str, Any] = {}
        self._undo: List[Callable[[], None]] = []

    def output(self, name: str, module: nn.Module) -> None:
        """Keep ``module``'s output under ``name``."""
        def hook(_module, _args, result):
            self._keep(name, result)
        self._undo.append(module.register_forward_hook(hook).remove)

    def inputs(self, name: str, module: nn.Module) -> None:
        """Keep ``module``'s keyword arguments under ``name``."""
        def hook(_module, _args, kwargs):
            self._keep(name, dict(kwargs))
        self._undo.append(module.register_forward_pre_hook(hook, with_kwargs=True).remove)

    def method(self, name: str, owner: Any, attr: str) -> None:
        """Keep the result of ``owner.attr(...)`` under ``name`` (for
        methods called directly, which forward hooks do not see)."""
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            result = original(*args, **kwargs)
            self._keep(name, result)
            return result
        setattr(owner, attr, wrapped)
        self._undo.append(lambda: delattr(owner, attr))

    def _keep(self, name: str, value: Any) -> None:
        if name in self.out:  # each part runs once per image at test time
            raise AssertionError(f'{name} ran more than once in one forward pass')
        self.out[name] = value

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _predict_det(model: nn.Module, golden: Dict[str, Any]):
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=golden['inputs']['metainfo'])
    with torch.no_grad():
        return model.predict(golden['inputs']['img'], [sample])[0]


def _two_stage(model: nn.Module, golden: Dict[str, Any]) -> Dict[str, Any]:
    rec = Recorder()
    rec.output('backbone', model.backbone)
    rec.output('neck', model.neck)
    rec.method('rpn', model.rpn_head, 'predict')
    mask_heads = model.roi_head.mask_head
    mask_heads = list(mask_heads) if isinstance(mask_heads, nn.ModuleList) else [mask_heads]
    for i, head in enumerate(mask_heads):
        rec.output(f'mask_head{i}', head)
    try:
        result = _predict_det(model, golden)
    finally:
        rec.close()
    proposals = rec.out['rpn'][0]
    pred = result.pred_instances
    out = dict(backbone=list(rec.out['backbone']), neck=list(rec.out['neck']),
               proposals=torch.cat([proposals.bboxes, proposals.scores[:, None]], 1),
               det_bboxes=pred.bboxes, det_scores=pred.scores, det_labels=pred.labels,
               det_masks=pred.masks.bool())
    for i in range(len(mask_heads)):
        out[f'mask_head{i}_pred'] = rec.out[f'mask_head{i}']
    return out


def _dino(model: nn.Module, golden: Dict[str, Any]) -> Dict[str, Any]:
    rec = Recorder()
    rec.output('backbone', model.backbone)
    rec.output('neck', model.neck)
    rec.output('encoder', model.encoder)
    rec.inputs('decoder_in', model.decoder)
    rec.output('decoder', model.decoder)
    rec.output('enc_cls', model.bbox_head.cls_branches[model.decoder.num_layers])
    rec.output('head', model.bbox_head)
    try:
        with dino_num_feats(model.decoder.embed_dims // 2):
            result = _predict_det(model, golden)
    finally:
        rec.close()
    enc_cls = rec.out['enc_cls']
    topk = enc_cls.max(-1)[0].topk(model.num_queries, dim=1)[1]
    hidden, references = rec.out['decoder']
    cls_scores, bbox_preds = rec.out['head']
    pred = result.pred_instances
    return dict(backbone=list(rec.out['backbone']), neck=list(rec.out['neck']),
                encoder_memory=rec.out['encoder'],
                enc_topk_score=torch.gather(
                    enc_cls, 1, topk[..., None].expand(-1, -1, enc_cls.shape[-1])),
                enc_topk_anchor=rec.out['decoder_in']['reference_points'],
                decoder_hidden_states=hidden, decoder_references=references,
                all_cls_scores=cls_scores, all_bbox_preds=bbox_preds,
                det_bboxes=pred.bboxes, det_scores=pred.scores, det_labels=pred.labels)


def _upernet(model: nn.Module, golden: Dict[str, Any]) -> Dict[str, Any]:
    from mmseg.structures import SegDataSample
    rec = Recorder()
    rec.output('backbone', model.backbone)
    rec.method('decode_head', model.decode_head, 'forward')
    sample = SegDataSample(metainfo=golden['inputs']['metainfo'])
    try:
        with torch.no_grad():
            result = model.predict(golden['inputs']['img'], [sample])[0]
    finally:
        rec.close()
    seg_logits = result.seg_logits.data[None]
    return dict(backbone=list(rec.out['backbone']), decode_head_logits=rec.out['decode_head'],
                seg_logits_sub=seg_logits[:, :, 1::16, 3::16],
                seg_pred=result.pred_sem_seg.data[0])


RUNNERS = {'mask_rcnn': _two_stage, 'cascade': _two_stage, 'dino': _dino, 'upernet': _upernet}


@functools.lru_cache(maxsize=None)
def run_golden(family: str, core_op: str) -> Tuple[Dict[str, Any], Dict[str, Any], nn.Module]:
    """``(golden, port outputs, model)`` of one family and core op, computed
    once per test session (callers must not modify them).

    The port outputs use the golden's ``outputs`` names; the two-stage
    detectors' ``mask_head{i}_pred`` hold the mask logits of all
    detections and classes (the golden keeps the top 10 at their labels),
    ``det_masks`` the unpacked binary masks.
    """
    golden = load_model_golden(family)
    torch.manual_seed(0)
    model = build_model(port_config(golden, core_op), SCOPES[family])
    model.load_state_dict(port_state_dict(golden), strict=True)
    return golden, RUNNERS[family](model, golden), model


def unpack_masks(outputs: Dict[str, Any]) -> torch.Tensor:
    """The golden's binary detection masks, ``[N, H, W]`` bool.

    Args:
        outputs: A golden's ``outputs``.
    """
    masks = np.unpackbits(outputs['det_masks_packed'].numpy(), axis=-1).astype(bool)
    return torch.from_numpy(masks[..., :outputs['det_masks_shape'][-1]])


def match_rows(ref_boxes: torch.Tensor, ref_labels: torch.Tensor, boxes: torch.Tensor,
               labels: torch.Tensor) -> List[int]:
    """For every reference row in order, the unused port row with the same
    label and the nearest box (max abs coordinate difference); -1 when no
    row of that label is left. Order-free: near-tied scores may swap rows."""
    used = torch.zeros(len(boxes), dtype=torch.bool)
    match = []
    for box, label in zip(ref_boxes, ref_labels):
        dist = (boxes - box).abs().amax(-1).double()
        dist[(labels != label) | used] = float('inf')
        best = int(dist.argmin()) if len(dist) else -1
        if best < 0 or not torch.isfinite(dist[best]):
            match.append(-1)
            continue
        used[best] = True
        match.append(best)
    return match


def compare_maps(outs: Sequence[torch.Tensor], refs: Sequence[torch.Tensor]) -> List[float]:
    """Per-map rel error (max|Δ| / max|ref|); the shapes must agree."""
    assert len(outs) == len(refs), f'{len(outs)} maps vs {len(refs)} in the golden'
    errs = []
    for i, (out, ref) in enumerate(zip(outs, refs)):
        assert out.shape == ref.shape, f'map {i}: {tuple(out.shape)} vs {tuple(ref.shape)}'
        errs.append(max_rel_err(out, ref))
    return errs
