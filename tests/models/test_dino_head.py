"""DINO box references at the image border: the port computes what the
reference computes, ``inverse_sigmoid`` with eps 1e-3 in the head and in
the decoder's reference refinement (mmdet's head default is 1e-5)."""
import pytest
import torch
from mmengine.config import Config

from projects.internimage.models.dino_head import REFERENCE_EPS, InternImageDINOHead
from tests.helpers import REPO_ROOT
from tests.models.golden_models import build_model, load_model_golden, port_config, port_state_dict

#: Coordinates at, near and away from the border; eps 1e-3 and 1e-5 differ
#: on all but 0.3 and 0.5.
COORDS = [0.0, 1e-6, 1e-5, 2e-4, 9e-4, 0.3, 0.5, 1 - 9e-4, 1 - 2e-4, 1 - 1e-5, 1.0]
INTERIOR = [i for i, c in enumerate(COORDS) if REFERENCE_EPS < c < 1 - REFERENCE_EPS]
#: A small head, as the DINO configs set it up (sigmoid focal loss).
HEAD = dict(num_classes=3, embed_dims=32, num_pred_layer=2, as_two_stage=True,
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                          loss_weight=1.0))
DINO_CONFIGS = sorted((REPO_ROOT / 'configs' / 'coco').glob('dino_*.py'))


def reference_logit(x: torch.Tensor, eps: float = REFERENCE_EPS) -> torch.Tensor:
    """The reference's ``inverse_sigmoid(x, eps)``, in float64."""
    x = x.double().clamp(0, 1)
    return torch.log(x.clamp_min(eps) / (1 - x).clamp_min(eps))


def border_references(num_queries: int) -> torch.Tensor:
    """``(1, num_queries, 4)`` references cycling through :data:`COORDS`."""
    values = torch.tensor(COORDS * (4 * num_queries // len(COORDS) + 1))
    return values[:4 * num_queries].reshape(1, num_queries, 4).float()


@pytest.fixture(scope='module')
def dino():
    """The tiny golden DINO, built from the port's config (its head type)."""
    golden = load_model_golden('dino')
    model = build_model(port_config(golden, 'DCNv3_pytorch'), 'mmdet')
    model.load_state_dict(port_state_dict(golden), strict=True)
    return model


@pytest.mark.parametrize('config', DINO_CONFIGS, ids=lambda p: p.stem)
def test_dino_configs_use_the_reference_head(config):
    """InternImageDINOHead, or (CB-DINO) a head built on it."""
    from mmdet.registry import MODELS
    head = MODELS.module_dict[Config.fromfile(str(config)).model.bbox_head.type]
    assert issubclass(head, InternImageDINOHead)


def test_head_matches_the_reference_at_the_border(dino):
    head = dino.bbox_head
    assert type(head) is InternImageDINOHead and head.reference_eps == REFERENCE_EPS
    layers, queries = len(dino.decoder.layers), 12
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(layers, 1, queries, dino.decoder.embed_dims, generator=gen)
    refs = [border_references(queries).roll(i, dims=1) for i in range(layers + 1)]
    with torch.no_grad():
        cls, boxes = head(hidden, refs)
        for layer in range(layers):
            deltas = head.reg_branches[layer](hidden[layer]).double()
            expected = (deltas + reference_logit(refs[layer])).sigmoid()
            assert (boxes[layer].double() - expected).abs().max() < 1e-6
            assert torch.equal(cls[layer], head.cls_branches[layer](hidden[layer]))


def test_zero_offsets_return_the_reference_clamped_to_eps():
    """With zero box offsets the head returns sigmoid(inverse_sigmoid(ref)):
    the reference's eps shows directly, and mmdet's DINOHead (eps 1e-5)
    differs exactly at the border."""
    from mmdet.models.dense_heads import DINOHead
    refs = border_references(11)
    hidden = torch.randn(1, 1, 11, 32)
    outs = {}
    for cls in (InternImageDINOHead, DINOHead):
        torch.manual_seed(0)
        head = cls(**HEAD)
        for branch in head.reg_branches:
            torch.nn.init.zeros_(branch[-1].weight)
            torch.nn.init.zeros_(branch[-1].bias)
        with torch.no_grad():
            outs[cls] = head(hidden, [refs, refs])[1][0]
    expected = reference_logit(refs).sigmoid()
    assert (outs[InternImageDINOHead].double() - expected).abs().max() < 1e-7
    # e.g. a reference at 0 comes back as 1e-3 / (1 + 1e-3), not 1e-5
    assert outs[InternImageDINOHead][0, 0, 0].item() == pytest.approx(1e-3 / (1 + 1e-3), rel=1e-5)
    flat = refs.flatten().tolist()
    border = torch.tensor([not REFERENCE_EPS < c < 1 - REFERENCE_EPS for c in flat])
    diff = (outs[InternImageDINOHead] - outs[DINOHead]).abs().flatten()
    assert diff[~border].max() < 1e-7 and diff[border].min() > 1e-6


def test_decoder_refines_border_references_as_the_reference():
    """mmdet's DinoTransformerDecoder already uses eps 1e-3: with zero
    offsets, each refined reference is sigmoid(inverse_sigmoid(ref, 1e-3))."""
    from mmdet.models.layers import DinoTransformerDecoder
    embed, queries = 256, 11  # 256: mmdet's reference encoding assumes it
    decoder = DinoTransformerDecoder(
        num_layers=2, return_intermediate=True, post_norm_cfg=None,
        layer_cfg=dict(self_attn_cfg=dict(embed_dims=embed, num_heads=8),
                       cross_attn_cfg=dict(embed_dims=embed, num_levels=1, num_points=1),
                       ffn_cfg=dict(embed_dims=embed, feedforward_channels=16))).eval()
    reg = torch.nn.ModuleList([torch.nn.Linear(embed, 4) for _ in range(2)])
    for branch in reg:
        torch.nn.init.zeros_(branch.weight)
        torch.nn.init.zeros_(branch.bias)
    refs = border_references(queries)
    with torch.no_grad():
        _, references = decoder(
            query=torch.randn(1, queries, embed), value=torch.randn(1, 4, embed),
            key_padding_mask=torch.zeros(1, 4, dtype=torch.bool), self_attn_mask=None,
            reference_points=refs, spatial_shapes=torch.tensor([[2, 2]]),
            level_start_index=torch.tensor([0]), valid_ratios=torch.ones(1, 1, 2),
            reg_branches=reg)
    once = reference_logit(refs).sigmoid()
    twice = reference_logit(once).sigmoid()
    assert (references[1].double() - once).abs().max() < 1e-7
    assert (references[2].double() - twice).abs().max() < 1e-7


def test_reference_eps_is_checked():
    with pytest.raises(ValueError, match='reference_eps'):
        InternImageDINOHead(**HEAD, reference_eps=0.0)
