"""CBDINO, CBDINOHead and CBChannelMapper on mmdet 3.x: training computes
DINO's losses on each backbone of the composite (the assisting one weighted
0.5, the reference's names), testing uses the lead backbone alone; errors."""
import copy

import pytest
import torch
from mmdet.models.detectors import DINO
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from projects.internimage.models.cb_dino_head import CBDINOHead, branch_loss_name
from projects.internimage.models.dino_head import InternImageDINOHead
from tests.helpers import REPO_ROOT
from tests.models.golden_models import build_model, dino_num_feats, load_model_golden

CB_CONFIG = REPO_ROOT / 'configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ss.py'


def tiny_cb_config(**noise) -> Config:
    """The CB config at the tiny DINO golden's size, CB-InternImage-H of
    width 16, depths 1-1-2-1, no drop path."""
    cfg = Config.fromfile(str(CB_CONFIG))
    cfg.merge_from_dict(load_model_golden('dino')['port_config_overrides'])
    cfg.merge_from_dict({
        'model.backbone.depths': [1, 1, 2, 1],
        'model.backbone.level2_post_norm_block_ids': [1],
        'model.backbone.drop_path_rate': 0.,
        'model.backbone.core_op': 'DCNv3_pytorch'})
    for key, value in noise.items():
        cfg.model.dn_cfg[key] = value
    return cfg


def samples(num: int = 2, size=(64, 96)):
    """Images of ``size`` with two or three boxes each, and their samples."""
    gen = torch.Generator().manual_seed(0)
    h, w = size
    out = []
    for i in range(num):
        n = 2 + i % 2
        xy = torch.rand(n, 2, generator=gen) * torch.tensor([w / 2, h / 2])
        wh = torch.rand(n, 2, generator=gen) * torch.tensor([w / 3, h / 3]) + 8
        sample = DetDataSample(metainfo=dict(
            img_shape=size, pad_shape=size, batch_input_shape=size, ori_shape=size,
            scale_factor=(1., 1.), img_id=i))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(0, 80, (n, ), generator=gen))
        out.append(sample)
    return torch.randn(num, 3, *size, generator=gen), out


def build_train(cfg):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(cfg), 'mmdet')
    model.init_weights()
    return model.train()


#: DINO's loss keys of a 2-layer decoder.
def dino_loss_keys(num_layers: int = 2):
    keys = ['loss_cls', 'loss_bbox', 'loss_iou', 'enc_loss_cls', 'enc_loss_bbox',
            'enc_loss_iou', 'dn_loss_cls', 'dn_loss_bbox', 'dn_loss_iou']
    for i in range(num_layers - 1):
        keys += [f'd{i}.{k}' for k in ('loss_cls', 'loss_bbox', 'loss_iou', 'dn_loss_cls',
                                       'dn_loss_bbox', 'dn_loss_iou')]
    return keys


def test_loss_names_are_the_reference_ones():
    assert branch_loss_name('loss_cls', 0, 0.5) == 'loss_cls0_w0.5'
    assert branch_loss_name('d0.dn_loss_iou', 0, 0.5) == 'd0.dn_loss_iou0_w0.5'
    assert branch_loss_name('loss_cls', 1, 1) == 'loss_cls1'


def test_training_losses_are_dino_on_each_backbone():
    """With (practically) noise-free denoising queries, each branch's losses
    equal mmdet's DINO losses computed on that backbone's features alone:
    the assisting ones times 0.5, the lead ones as they are."""
    cfg = tiny_cb_config(label_noise_scale=1e-9, box_noise_scale=1e-9)
    model = build_train(cfg)
    with torch.no_grad():  # open the composite connections
        for i in range(4):
            getattr(model.backbone.cb_modules[1], f'gamma{i}').fill_(0.3)
    images, data = samples()
    with dino_num_feats(16), torch.no_grad():
        losses = model.loss(images, copy.deepcopy(data))
        feats = model.neck(model.backbone(images))
        assert isinstance(feats, list) and len(feats) == 2
        single = []
        for branch in feats:
            head_inputs = model.forward_transformer(branch, data)
            single.append(InternImageDINOHead.loss(model.bbox_head, **head_inputs,
                                                   batch_data_samples=data))
    keys = dino_loss_keys()
    assert set(single[0]) == set(keys)
    assert set(losses) == {f'{k}0_w0.5' for k in keys} | {f'{k}1' for k in keys}
    for key in keys:
        torch.testing.assert_close(losses[f'{key}0_w0.5'], 0.5 * single[0][key],
                                   rtol=1e-4, atol=1e-6, msg=key)
        torch.testing.assert_close(losses[f'{key}1'], single[1][key], rtol=1e-4, atol=1e-6,
                                   msg=key)
    # the two backbones differ, so do their losses
    assert not torch.allclose(single[0]['loss_bbox'], single[1]['loss_bbox'])


def test_cb_first_weight_scales_the_assisting_losses():
    cfg = tiny_cb_config(label_noise_scale=1e-9, box_noise_scale=1e-9)
    images, data = samples()
    results = {}
    for weight in (0.5, 1.0):
        cfg.model.bbox_head.cb_first_weight = weight
        model = build_train(cfg)
        with dino_num_feats(16), torch.no_grad():
            results[weight] = model.loss(images, copy.deepcopy(data))
    for key in dino_loss_keys():
        torch.testing.assert_close(results[0.5][f'{key}0_w0.5'],
                                   0.5 * results[1.0][f'{key}0'], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(results[0.5][f'{key}1'], results[1.0][f'{key}1'],
                                   rtol=1e-5, atol=1e-7)


def test_one_training_step_reaches_every_parameter():
    """The summed loss (published noise) back-propagates into both
    backbones, the connections' gammas, the neck and the head."""
    model = build_train(tiny_cb_config())
    images, data = samples()
    with dino_num_feats(16):
        losses = model.loss(images, data)
        loss, _ = model.parse_losses(losses)
        loss.backward()
    assert torch.isfinite(loss)
    named = dict(model.named_parameters())
    for name in ('backbone.cb_modules.0.patch_embed.conv1.weight',
                 'backbone.cb_modules.0.levels.3.blocks.0.mlp.fc2.weight',
                 'backbone.cb_modules.1.levels.3.blocks.0.mlp.fc2.weight',
                 'backbone.cb_modules.1.gamma0', 'backbone.cb_modules.1.gamma3',
                 'neck.convs.0.conv.weight', 'bbox_head.cls_branches.0.weight',
                 'dn_query_generator.label_embedding.weight'):
        assert named[name].grad is not None and named[name].grad.abs().sum() > 0, name


def test_prediction_uses_the_lead_backbone_alone():
    """At test time the neck maps the lead backbone's features only, and the
    detector predicts from them as DINO does."""
    cfg = tiny_cb_config()
    model = build_train(cfg).eval()
    images, data = samples(1)
    with dino_num_feats(16), torch.no_grad():
        assist, lead = model.backbone(images)
        mapped = model.neck((assist, lead))
        plain = type(model.neck).__mro__[1].forward(model.neck, lead)
        for got, want in zip(mapped, plain):
            assert torch.equal(got, want)
        result = model.predict(images, copy.deepcopy(data))[0].pred_instances
        head_inputs = model.forward_transformer(plain, data)
        want = model.bbox_head.predict(**head_inputs, batch_data_samples=data)[0]
    assert len(result) == cfg.model.test_cfg.max_per_img
    torch.testing.assert_close(result.bboxes, want.bboxes)
    torch.testing.assert_close(result.scores, want.scores)


def test_neck_maps_both_backbones_in_training():
    model = build_train(tiny_cb_config())
    images, _ = samples(1)
    with torch.no_grad():
        outs = model.neck(model.backbone(images))
    assert len(outs) == 2 and all(len(o) == 4 for o in outs)
    assert not torch.allclose(outs[0][0], outs[1][0])


def test_wrong_parts_are_refused():
    cfg = tiny_cb_config()
    bad = copy.deepcopy(cfg)
    bad.model.bbox_head.type = 'InternImageDINOHead'
    bad.model.bbox_head.pop('cb_first_weight')
    with pytest.raises(ValueError, match='CBDINO needs bbox_head type CBDINOHead'):
        build_train(bad)
    bad = copy.deepcopy(cfg)
    bad.model.rule = 'freeze_backbone'
    with pytest.raises(ValueError, match="rule='freeze_backbone'"):
        build_train(bad)
    bad = copy.deepcopy(cfg)
    bad.model.bbox_head.cb_first_weight = -1
    with pytest.raises(ValueError, match='cb_first_weight'):
        build_train(bad)
    # a plain backbone gives one tuple of features: CBDINO cannot train on it
    bad = copy.deepcopy(cfg)
    bad.model.backbone.type = 'InternImage'
    model = build_train(bad)
    images, data = samples()
    with pytest.raises(ValueError, match='one tuple of features per backbone'):
        model.loss(images, data)


def test_head_refuses_a_batch_that_does_not_split():
    model = build_train(tiny_cb_config())
    images, data = samples(3)
    with dino_num_feats(16):
        head_inputs = DINO.forward_transformer(model, model.neck(model.backbone(images))[1],
                                               data)
        with pytest.raises(ValueError, match='once per backbone'):
            CBDINOHead.loss(model.bbox_head, **head_inputs, batch_data_samples=data)


def test_multi_scale_flip_test_through_det_tta_model(synthetic_data):
    """The _ms config's test: its pipeline gives six views of an image (3
    scales x flip); mmdet's DetTTAModel runs the tiny CB model on them (at a
    tenth of the scales) and merges their boxes, mapped back to the image."""
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from projects.internimage.apis.synthetic_data import CLASSES
    init_default_scope('mmdet')
    ms = Config.fromfile(
        str(REPO_ROOT / 'configs/coco/dino_4scale_cbinternimage_h_objects365_coco_ms.py'))
    data = copy.deepcopy(ms.test_dataloader.dataset)
    data.update(data_root=str(synthetic_data / 'coco') + '/', metainfo=dict(classes=CLASSES),
                pipeline=ms.tta_pipeline)
    sample = DATASETS.build(data)[0]
    assert len(sample['inputs']) == 6
    assert sorted({tuple(x.shape[-2:]) for x in sample['inputs']}) == [
        (800, 800), (1000, 1000), (1200, 1200)]  # the square 96-pixel images, resized
    # the tiny model runs the same views at a tenth of the scales
    small = copy.deepcopy(ms.tta_pipeline)
    for resize in small[1].transforms[0]:
        resize.scale = (resize.scale[0] // 10, resize.scale[1] // 10)
    data.pipeline = small
    sample = DATASETS.build(data)[0]
    torch.manual_seed(0)
    tta = MODELS.build(dict(**ms.tta_model, module=tiny_cb_config().model))
    tta.module.init_weights()  # (DINO's level_embed is uninitialised memory until then)
    tta.eval()
    with dino_num_feats(16), torch.no_grad():
        result = tta.test_step(pseudo_collate([sample]))[0]
    pred = result.pred_instances
    assert 0 < len(pred) <= 300
    assert torch.isfinite(pred.bboxes).all() and torch.isfinite(pred.scores).all()
    h, w = result.ori_shape
    assert pred.bboxes.min() >= 0 and pred.bboxes[:, 2].max() <= w and pred.bboxes[:, 3].max() <= h
