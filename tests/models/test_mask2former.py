"""Mask2Former + InternImage: the published configs (size and recipe),
activation checkpointing, FLOPs counting, and a tiny model trained and
evaluated through the real tools (the reference-checkpoint conversion:
tests/checkpoint/test_mask2former_converter.py)."""
import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.helpers import REPO_ROOT
from tests.tools.test_train_test import run, test_metrics

CONFIGS = REPO_ROOT / 'configs'
ADE_SS = CONFIGS / 'ade20k' / 'mask2former_internimage_h_896_80k_cocostuff2ade20k_ss.py'
ADE_MS = CONFIGS / 'ade20k' / 'mask2former_internimage_h_896_80k_cocostuff2ade20k_ms.py'
COCO_STUFF = (CONFIGS / 'coco_stuff164k' /
              'mask2former_internimage_h_896_80k_cocostuff164k.py')
DEMO = CONFIGS / 'demo' / 'mask2former_internimage_demo.py'
HF = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/'

#: The published size: 1.31B parameters.
PUBLISHED_PARAMS = 1.31e9


@pytest.fixture(scope='module')
def load():
    """``load(path)``: the config, parsed once per module, without the
    backbone's pretrained init_cfg (no downloads)."""
    from projects.internimage.apis import load_config
    cache = {}

    def _load(path: Path, keep_init: bool = False):
        if path not in cache:
            cache[path] = load_config(str(path))
        cfg = copy.deepcopy(cache[path])
        if not keep_init:
            cfg.model.backbone.init_cfg = None
        return cfg

    return _load


def build(cfg, device: str = 'cpu') -> torch.nn.Module:
    from mmengine.registry import MODELS
    with torch.device(device):
        return MODELS.build(copy.deepcopy(cfg.model))


# --------------------------------------------------------------- configs --

@pytest.mark.parametrize('path', [ADE_SS, COCO_STUFF], ids=lambda p: p.stem)
def test_published_size_and_head(path, load):
    """Built on the meta device: 1.31B parameters (+-1%), InternImage-H into
    a 1024-channel, 200-query head (6-layer deformable pixel decoder, 9-layer
    decoder, 32 heads, FFN 4096). (The _ms config is the _ss model: both are
    in tests/configs' published-size table and pins.)"""
    model = build(load(path), device='meta')
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / PUBLISHED_PARAMS - 1) <= 0.01, f'{params / 1e9:.4f}B'
    bb, head = model.backbone, model.decode_head
    assert (bb.channels, list(bb.depths), bb.out_indices) == (320, [6, 6, 32, 6], (0, 1, 2, 3))
    assert head.num_queries == 200 and head.query_feat.embedding_dim == 1024
    assert head.mask_embed[-1].out_features == 1024
    encoder = head.pixel_decoder.encoder
    assert len(encoder.layers) == 6
    attn = encoder.layers[0].self_attn
    assert (attn.embed_dims, attn.num_heads, attn.num_levels, attn.num_points) == (1024, 32, 3, 4)
    assert encoder.layers[0].ffn.layers[0][0].out_features == 4096
    decoder = head.transformer_decoder
    assert len(decoder.layers) == 9
    assert decoder.layers[0].self_attn.attn.num_heads == 32
    assert decoder.layers[0].cross_attn.attn.num_heads == 32
    assert decoder.layers[0].ffn.layers[0][0].out_features == 4096


def test_head_widths_checked(load):
    """The head takes all four stages: other widths are refused before the
    model is built."""
    from projects.internimage.models.model_checks import check_neck_in_channels
    cfg = load(ADE_SS)
    check_neck_in_channels(cfg.model)
    cfg.model.decode_head.in_channels = [64, 128, 256, 512]
    with pytest.raises(ValueError, match=r'decode_head \(Mask2FormerHead\) in_channels='
                       r'\[64, 128, 256, 512\].*widths \[320, 640, 1280, 2560\]'):
        check_neck_in_channels(cfg.model)


def test_layer_decay_over_the_50_blocks(load):
    """lr scale 0.95^(51 - id): id 0 for the stem and the head's queries /
    embeddings, 1 + block index for InternImage-H's 50 blocks, 51 (full lr)
    for the rest of the head."""
    from mmengine.optim import build_optim_wrapper
    cfg = load(ADE_SS)
    model = build(cfg, device='meta')
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups
    scale = {name: g['lr_scale'] for g in groups for name in g['param_names']}
    assert len(scale) == len(list(model.parameters()))
    for name, layer_id in [('backbone.patch_embed.conv1.weight', 0),
                           ('decode_head.query_feat.weight', 0),
                           ('decode_head.cls_embed.weight', 0),
                           ('backbone.levels.0.blocks.0.dcn.input_proj.weight', 1),
                           ('backbone.levels.2.blocks.31.mlp.fc1.weight', 44),
                           ('backbone.levels.3.blocks.5.mlp.fc2.weight', 50),
                           ('decode_head.transformer_decoder.layers.8.ffn.layers.1.weight', 51),
                           ('decode_head.pixel_decoder.input_convs.0.conv.weight', 51)]:
        assert scale[name] == pytest.approx(0.95**(51 - layer_id)), name


@pytest.mark.parametrize('path', [ADE_SS, ADE_MS, COCO_STUFF], ids=lambda p: p.stem)
def test_published_recipe(path, load):
    """The reference configs' recipe (lr 1e-5 and clipping 0.1 on ADE20K,
    2e-5 and no clipping on COCO-Stuff)."""
    cfg = load(path, keep_init=True)
    ade = path.parent.name == 'ade20k'
    num_classes = 150 if ade else 171
    assert cfg.default_scope == 'mmseg'
    head = cfg.model.decode_head
    assert head.type == 'Mask2FormerHead' and head.num_classes == num_classes
    assert head.loss_cls.loss_weight == 2.0
    assert head.loss_cls.class_weight == [1.0] * num_classes + [0.1]
    assert (head.loss_mask.loss_weight, head.loss_dice.loss_weight) == (5.0, 5.0)
    assert head.train_cfg.num_points == 12544
    assert cfg.model.test_cfg.mode == 'whole'

    ow = cfg.optim_wrapper
    assert ow.optimizer.type == 'AdamW'
    assert (ow.optimizer.lr, ow.optimizer.weight_decay) == ((1e-5 if ade else 2e-5), 0.05)
    assert ow.constructor == 'InternImageLayerDecayOptimizerConstructor'
    assert ow.paramwise_cfg == dict(layer_decay_rate=0.95, offset_lr_scale=1.0)
    assert cfg.model.backbone.arch == 'h'
    assert ow.get('clip_grad') == (dict(max_norm=0.1, norm_type=2) if ade else None)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-6, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 1.0, 0.0, 80000)
    assert cfg.train_cfg.max_iters == 80000
    assert cfg.train_cfg.val_interval == (2000 if ade else 8000)
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.auto_scale_lr.base_batch_size == 16

    data = cfg.train_dataloader.dataset
    assert data.data_root == ('data/ade/ADEChallengeData2016' if ade else 'data/coco_stuff164k')
    assert data.type == ('ADE20KDataset' if ade else 'COCOStuffDataset')
    resize = [t for t in data.pipeline if t.type == 'RandomResize'][0]
    assert (resize.scale, resize.ratio_range) == ((3584, 896), (0.5, 2.0))
    crop = [t for t in data.pipeline if t.type == 'RandomCrop'][0]
    assert crop.crop_size == (896, 896)
    assert cfg.model.data_preprocessor.size == (896, 896)
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (3584, 896)
    if ade:
        assert cfg.load_from == HF + 'mask2former_internimage_h_896_80k_cocostuff164k.pth'
        assert cfg.model.backbone.init_cfg is None
        # multi-scale + flip (tools/test.py --tta): short sides 768..1024
        resizes, _, flips, _, _ = cfg.tta_pipeline[1].transforms
        assert [r.scale for r in resizes] == [(4 * s, s) for s in (768, 832, 896, 960, 1024)]
        assert [f.prob for f in flips] == [0., 1.]
    else:
        assert cfg.model.backbone.init_cfg.checkpoint == HF + 'internimage_h_jointto22k_384.pth'


# ------------------------------------------------------------- memory, FLOPs --

def test_with_cp_same_gradients(load):
    """InternImage-H's blocks (res post-norm, level-2 post-norms, centre
    feature scale, 5x5 dw conv), shrunk, with ``with_cp=True`` under the
    Mask2Former head: the loss and every gradient equal those without
    checkpointing."""
    from mmengine.dataset import pseudo_collate
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    cfg = load(DEMO)
    cfg.model.backbone.update(arch='h', level2_post_norm_block_ids=[0], drop_path_rate=0.)
    gen = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (1, 32, 32), generator=gen)
    sample = SegDataSample(gt_sem_seg=PixelData(data=label),
                           metainfo=dict(img_shape=(32, 32), ori_shape=(32, 32)))
    batch = pseudo_collate([dict(inputs=torch.randint(0, 255, (3, 32, 32), generator=gen,
                                                       dtype=torch.uint8),
                                 data_samples=sample)])
    results = []
    for with_cp in (False, True):
        cfg.model.backbone.with_cp = with_cp
        torch.manual_seed(0)
        model = build(cfg).train()
        calls = []
        model.backbone.levels[0].blocks[0].dcn.register_forward_hook(
            lambda *_: calls.append(1))
        data = model.data_preprocessor(copy.deepcopy(batch), training=True)
        torch.manual_seed(1)  # the head samples points
        loss, _ = model.parse_losses(model(data['inputs'], data['data_samples'],
                                           mode='loss'))
        loss.backward()
        assert len(calls) == (2 if with_cp else 1)  # recomputed in backward
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (loss0, grads0), (loss1, grads1) = results
    torch.testing.assert_close(loss1, loss0, rtol=1e-6, atol=0)
    assert grads0.keys() == grads1.keys()
    for name, grad in grads0.items():
        if grad is None:
            assert grads1[name] is None, name
            continue
        torch.testing.assert_close(grads1[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    assert any(g is not None and g.abs().sum() > 0
               for n, g in grads1.items() if n.startswith('backbone.levels.0'))


def test_get_flops_counts_the_head(load):
    """The FLOP count (tools/get_flops.py) runs the Mask2Former head (which needs the image
    metas) and adds the DCNv3 sampling of the backbone."""
    from projects.internimage.apis.flops import complexity
    from tests.apis.test_flops import dcnv3_sampling_flops
    cfg = load(DEMO)
    result = complexity(cfg, (64, 64))
    bb = cfg.model.backbone
    assert result['dcnv3_flops'] == dcnv3_sampling_flops(bb.channels, bb.depths, 64, 64)
    by_module = result['by_module']
    for name in ('model.decode_head.pixel_decoder.encoder',
                 'model.decode_head.transformer_decoder', 'model.decode_head.mask_embed'):
        assert by_module.get(name, 0) > 0, name
    # the 1x1 mask-feature conv: 32 -> 32 channels at 1/4 resolution
    assert by_module['model.decode_head.pixel_decoder.mask_feature'] == 16 * 16 * 32 * 32


# --------------------------------------------------- train and test (tools) --

#: The trained tiny model must reach this mIoU (%) on the validation images.
#: A constant "background" prediction scores about 18 (background IoU ~0.9
#: over 5 classes, computed below as ``chance``); the shapes get 0.
MIN_MIOU = 40.0


def test_tiny_model_learns_through_the_tools(tmp_path):
    """tools/train.py trains the tiny Mask2Former + InternImage (150
    iterations of 4 images, 64x64) on synthetic shapes; the checkpoint,
    handed to tools/test.py in the reference's layout, is converted on
    loading and scores clearly above chance."""
    from projects.internimage.apis.synthetic_data import generate
    from projects.internimage.checkpoint.converters.mask2former import mmseg_to_mask2former
    generate(str(tmp_path / 'data'), coco_num=(1, 1), ade_num=(32, 8), size=64)
    data_root = tmp_path / 'data' / 'ade' / 'ADEChallengeData2016'
    cfg = tmp_path / 'tiny_m2f.py'
    cfg.write_text(f'''
_base_ = [{str(DEMO)!r}]
data_root = {str(data_root)!r}
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=150, val_interval=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type='PolyLR', eta_min=0.0, by_epoch=False, begin=0, end=150),
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=150))
randomness = dict(seed=0)
''')
    work = tmp_path / 'train'
    run([sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), str(cfg), '--work-dir', str(work)],
        tmp_path / 'train.log')
    trained = torch.load(work / 'iter_150.pth', map_location='cpu', weights_only=False)
    reference = tmp_path / 'reference_layout.pth'
    torch.save(dict(state_dict=mmseg_to_mask2former(trained['state_dict'])), reference)

    out = run([sys.executable, str(REPO_ROOT / 'tools' / 'test.py'), str(cfg),
               str(reference), '--work-dir', str(tmp_path / 'test')], tmp_path / 'test.log')
    assert 'is a reference mask2former checkpoint: converted' in out
    miou = test_metrics(tmp_path / 'test')['mIoU']

    labels = [np.array(Image.open(p)) for p in sorted(
        (data_root / 'annotations' / 'validation').glob('*.png'))]
    background = sum(int((lab == 1).sum()) for lab in labels)
    chance = 100 * background / sum(lab.size for lab in labels) / 5
    assert chance < MIN_MIOU / 2
    assert miou >= MIN_MIOU, f'mIoU {miou:.1f} (constant-background chance {chance:.1f})'
