"""The reference's Mask2Former (mmseg 0.x) checkpoint layout: conversion both
ways, the converted layers compute what the reference's do, a reference file
loads as it is, fine-tuning from other classes, and the converter's body."""
import copy
from typing import Dict

import pytest
import torch

from tests.helpers import REPO_ROOT

DEMO = REPO_ROOT / 'configs' / 'demo' / 'mask2former_internimage_demo.py'


def reference_head(cfg) -> torch.nn.Module:
    """The reference's (mmseg 0.x) Mask2Former head as far as its weights go,
    built the way its code builds it, with mmcv's generic transformer layers:
    a pixel decoder of ``BaseTransformerLayer`` (self-attention, norm, FFN,
    norm) and a decoder of ``BaseTransformerLayer`` (cross-attention, norm,
    self-attention, norm, FFN, norm) plus a final LayerNorm."""
    import mmcv.ops  # noqa: F401  (registers MultiScaleDeformableAttention)
    from mmcv.cnn import ConvModule
    from mmcv.cnn.bricks.transformer import TransformerLayerSequence
    from torch import nn
    head = cfg.model.decode_head
    feat, out = head.feat_channels, head.out_channels
    enc = head.pixel_decoder.encoder.layer_cfg
    dec = head.transformer_decoder.layer_cfg
    levels = head.num_transformer_feat_level
    gn = dict(type='GN', num_groups=head.pixel_decoder.norm_cfg.num_groups)
    ffn = dict(type='FFN', embed_dims=feat, num_fcs=2, ffn_drop=0.0,
               feedforward_channels=enc.ffn_cfg.feedforward_channels,
               act_cfg=dict(type='ReLU', inplace=True))
    pix = nn.Module()
    pix.input_convs = nn.ModuleList(
        ConvModule(head.in_channels[i], feat, 1, norm_cfg=gn, act_cfg=None, bias=True)
        for i in range(len(head.in_channels) - 1, len(head.in_channels) - levels - 1, -1))
    pix.encoder = TransformerLayerSequence(
        transformerlayers=dict(
            type='BaseTransformerLayer',
            attn_cfgs=dict(type='MultiScaleDeformableAttention', embed_dims=feat,
                           num_heads=enc.self_attn_cfg.num_heads, num_levels=levels,
                           num_points=enc.self_attn_cfg.num_points, batch_first=False),
            ffn_cfgs=ffn,
            operation_order=('self_attn', 'norm', 'ffn', 'norm')),
        num_layers=head.pixel_decoder.encoder.num_layers)
    pix.level_encoding = nn.Embedding(levels, feat)
    pix.lateral_convs = nn.ModuleList(
        [ConvModule(head.in_channels[0], feat, 1, bias=False, norm_cfg=gn, act_cfg=None)])
    pix.output_convs = nn.ModuleList(
        [ConvModule(feat, feat, 3, padding=1, bias=False, norm_cfg=gn,
                    act_cfg=dict(type='ReLU'))])
    pix.mask_feature = nn.Conv2d(feat, out, 1)
    mha = dict(type='MultiheadAttention', embed_dims=feat,
               num_heads=dec.self_attn_cfg.num_heads, batch_first=False)
    decoder = TransformerLayerSequence(
        transformerlayers=dict(
            type='BaseTransformerLayer', attn_cfgs=[mha, mha],
            ffn_cfgs=dict(ffn, feedforward_channels=dec.ffn_cfg.feedforward_channels),
            operation_order=('cross_attn', 'norm', 'self_attn', 'norm', 'ffn', 'norm')),
        num_layers=head.transformer_decoder.num_layers)
    decoder.post_norm = nn.LayerNorm(feat)
    ref = nn.Module()
    ref.pixel_decoder, ref.transformer_decoder = pix, decoder
    ref.query_embed = nn.Embedding(head.num_queries, feat)
    ref.query_feat = nn.Embedding(head.num_queries, feat)
    ref.level_embed = nn.Embedding(levels, feat)
    ref.cls_embed = nn.Linear(feat, head.num_classes + 1)
    ref.mask_embed = nn.Sequential(nn.Linear(feat, feat), nn.ReLU(), nn.Linear(feat, feat),
                                   nn.ReLU(), nn.Linear(feat, out))
    return ref


def reference_state_dict(cfg, model) -> Dict[str, torch.Tensor]:
    """A reference-layout state_dict for the tiny model: its backbone's keys
    (the reference's own) and the reference head's, random values."""
    gen = torch.Generator().manual_seed(0)
    keys = {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()}
    keys.update({f'decode_head.{k}': v for k, v in reference_head(cfg).state_dict().items()})
    return {k: torch.randn(v.shape, generator=gen).to(v.dtype) for k, v in keys.items()}


@pytest.fixture(scope='module')
def tiny():
    """The demo config (no pretrained backbone), its model and a
    reference-layout state_dict for it."""
    from mmengine.registry import MODELS

    from projects.internimage.apis import load_config
    cfg = load_config(str(DEMO))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model)).eval()
    return cfg, model, reference_state_dict(cfg, model)


def test_conversion_round_trip(tiny):
    """Every reference key maps, the result loads strictly (same shapes) and
    carries the same tensors; converting back gives the reference dict."""
    from projects.internimage.checkpoint.converters import detect_format
    from projects.internimage.checkpoint.converters.mask2former import (mask2former_to_mmseg,
                                                              mmseg_to_mask2former)
    cfg, model, ref = tiny
    assert detect_format(ref).name == 'mask2former'
    assert detect_format(model.state_dict()) is None  # our own layout
    ours = mask2former_to_mmseg(ref)
    assert len(ours) == len(ref)
    model = copy.deepcopy(model)
    model.load_state_dict(ours, strict=True)
    state = model.state_dict()
    assert state.keys() == ours.keys()
    for key, value in ours.items():
        assert torch.equal(state[key], value), key
    # the decoder's attentions: cross-attention first
    dec = 'decode_head.transformer_decoder.layers.1.'
    assert torch.equal(state[dec + 'cross_attn.attn.in_proj_weight'],
                       ref[dec + 'attentions.0.attn.in_proj_weight'])
    back = mmseg_to_mask2former(state)
    assert back.keys() == ref.keys()
    for key, value in ref.items():
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize('key', [
    'decode_head.conv_seg.weight',
    'decode_head.transformer_decoder.layers.0.attentions.2.attn.in_proj_weight',
    'decode_head.pixel_decoder.encoder.layers.0.norms.2.weight',
    'neck.fpn.weight',
])
def test_unmapped_key_is_named(tiny, key):
    from projects.internimage.checkpoint.converters.mask2former import mask2former_to_mmseg
    _, _, ref = tiny
    with pytest.raises(KeyError, match=key.replace('.', r'\.')):
        mask2former_to_mmseg(dict(ref, **{key: torch.zeros(1)}))


def test_converted_layers_compute_the_same(tiny):
    """A reference decoder layer (mmcv ``BaseTransformerLayer``, sequence
    first) and the converted mmdet 3.x layer (batch first) give the same
    output for the same query, memory, positions and attention mask; the
    same for a pixel-decoder encoder layer (deformable attention)."""
    from projects.internimage.checkpoint.converters.mask2former import mask2former_to_mmseg
    cfg, model, _ = tiny
    ref = reference_head(cfg).double().eval()
    ours = copy.deepcopy(model.decode_head).double().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
        ref_sd = {f'decode_head.{k}': v for k, v in ref.state_dict().items()}
        ours.load_state_dict({k[len('decode_head.'):]: v
                              for k, v in mask2former_to_mmseg(ref_sd).items()})
    c, nq, hw, bs = cfg.model.decode_head.feat_channels, 6, 20, 2
    heads = ours.transformer_decoder.layers[0].cross_attn.attn.num_heads
    q, qpos = torch.randn(2, bs, nq, c, generator=gen, dtype=torch.float64)
    mem, kpos = torch.randn(2, bs, hw, c, generator=gen, dtype=torch.float64)
    mask = torch.rand(bs * heads, nq, hw, generator=gen) < 0.3  # True: not attended
    with torch.no_grad():
        expected = ref.transformer_decoder.layers[1](
            query=q.transpose(0, 1), key=mem.transpose(0, 1), value=mem.transpose(0, 1),
            query_pos=qpos.transpose(0, 1), key_pos=kpos.transpose(0, 1),
            attn_masks=[mask, None]).transpose(0, 1)
        got = ours.transformer_decoder.layers[1](
            query=q, key=mem, value=mem, query_pos=qpos, key_pos=kpos,
            cross_attn_mask=mask)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)

    # encoder layer: 3 levels of 4x4, 2x2 and 1x1
    shapes = torch.tensor([[4, 4], [2, 2], [1, 1]])
    start = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    n = int(shapes.prod(1).sum())
    x, pos = torch.randn(2, bs, n, c, generator=gen, dtype=torch.float64)
    points = torch.rand(bs, n, 3, 2, generator=gen, dtype=torch.float64)
    kwargs = dict(reference_points=points, spatial_shapes=shapes, level_start_index=start)
    with torch.no_grad():
        expected = ref.pixel_decoder.encoder.layers[1](
            query=x.transpose(0, 1), key=None, value=None, query_pos=pos.transpose(0, 1),
            **kwargs).transpose(0, 1)
        got = ours.pixel_decoder.encoder.layers[1](query=x, query_pos=pos,
                                                   key_padding_mask=None, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_reference_checkpoint_loads_as_it_is(tiny, tmp_path):
    """A reference-format file given to mmengine's checkpoint loading (what
    ``load_from`` and ``tools/test.py`` use) is converted on the fly."""
    from mmengine.runner import load_checkpoint
    cfg, model, ref = tiny
    path = tmp_path / 'reference.pth'
    torch.save(dict(state_dict=ref, meta=dict(iter=80000)), path)
    model = copy.deepcopy(model)
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    state = model.state_dict()
    dec = 'decode_head.transformer_decoder.layers.0.'
    assert torch.equal(state[dec + 'self_attn.attn.out_proj.weight'],
                       ref[dec + 'attentions.1.attn.out_proj.weight'])
    assert torch.equal(state['backbone.patch_embed.conv1.weight'],
                       ref['backbone.patch_embed.conv1.weight'])


def test_fine_tuning_from_other_classes(tiny, tmp_path):
    """The ADE20K stage starts from the COCO-Stuff checkpoint (another
    number of classes): as the runner loads ``load_from`` (not strict), every
    tensor but the class embedding is taken, the class embedding is left."""
    from mmengine.runner import load_checkpoint
    cfg, model, _ = tiny
    other = copy.deepcopy(cfg)
    other.model.decode_head.num_classes = 7
    other.model.decode_head.loss_cls.class_weight = [1.0] * 7 + [0.1]
    ref = reference_state_dict(other, model)
    assert ref['decode_head.cls_embed.weight'].shape[0] == 8
    path = tmp_path / 'other_classes.pth'
    torch.save(dict(state_dict=ref), path)
    model = copy.deepcopy(model)
    before = model.decode_head.cls_embed.weight.detach().clone()
    load_checkpoint(model, str(path), map_location='cpu', strict=False)
    state = model.state_dict()
    assert torch.equal(state['decode_head.cls_embed.weight'], before)
    assert torch.equal(state['decode_head.query_feat.weight'], ref['decode_head.query_feat.weight'])
    assert torch.equal(state['decode_head.pixel_decoder.encoder.layers.1.ffn.layers.1.weight'],
                       ref['decode_head.pixel_decoder.encoder.layers.1.ffns.0.layers.1.weight'])


def test_convert_file(tiny, tmp_path):
    """The converter scripts' body writes a file in this project's layout;
    wrong inputs fail with the reason."""
    from projects.internimage.checkpoint import convert_file
    cfg, model, ref = tiny
    src, dst = tmp_path / 'ref.pth', tmp_path / 'out' / 'ours.pth'
    torch.save(dict(state_dict=ref, meta=dict(iter=80000)), src)
    assert convert_file(str(src), str(dst), 'mask2former') == len(ref)
    out = torch.load(dst, map_location='cpu', weights_only=False)
    assert out['meta'] == dict(iter=80000) and set(out) == {'state_dict', 'meta'}
    copy.deepcopy(model).load_state_dict(out['state_dict'], strict=True)

    with pytest.raises(FileNotFoundError, match='missing.pth'):
        convert_file(str(tmp_path / 'missing.pth'), str(dst), 'mask2former')
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'ours.pth')
    with pytest.raises(ValueError, match='not a reference Mask2Former checkpoint'):
        convert_file(str(tmp_path / 'ours.pth'), str(dst), 'mask2former')
    torch.save(dict(state_dict=dict(ref, **{'decode_head.extra.weight': torch.zeros(1)})), src)
    with pytest.raises(ValueError, match=r'decode_head\.extra\.weight'):
        convert_file(str(src), str(dst), 'mask2former')
