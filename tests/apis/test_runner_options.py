"""``--amp`` on the CPU (bfloat16 autocast) and ``--tta`` of tools/train.py
and tools/test.py, through their body (``config_for_training`` /
``config_for_testing``, ``run_training`` / ``run_testing``), in-process for
speed (the subprocess runs of the tools are in tests/tools)."""
import math
import re
from pathlib import Path

import pytest
from tests.helpers import REPO_ROOT

DET_CFG = REPO_ROOT / 'configs' / 'demo' / 'mask_rcnn_internimage_demo.py'
SEG_CFG = REPO_ROOT / 'configs' / 'demo' / 'upernet_internimage_demo.py'

pytestmark = pytest.mark.skipif(
    __import__('torch').cuda.is_available(),
    reason='the CPU path of --amp (with CUDA --amp is mmengine\'s own)')


def train_losses(work_dir: Path):
    """The logged losses of the (only) run in ``work_dir``, read from its
    text log (in-process, an earlier mmengine visualizer instance may have no
    scalar backend)."""
    log, = work_dir.glob('*/*.log')
    return [
        float(v) for v in re.findall(r'\(train\).*?  loss: (\S+)',
                                     log.read_text())
    ]


def test_seg_train_amp_then_test_amp_tta(tiny_seg_cfg, tmp_path):
    """train.py --amp: one iteration with CPUAmpOptimWrapper (whole model in
    bfloat16), a finite loss; test.py --amp --tta: the TTA model under
    CPUAutocastHook gives the metrics (one image, 12 augmentations)."""
    from projects.internimage.apis import (config_for_testing, config_for_training,
                                           run_testing, run_training)
    work = tmp_path / 'train'
    run_training(config_for_training(
        str(tiny_seg_cfg), work_dir=str(work), amp=True,
        cfg_options={'train_cfg.max_iters': 1, 'default_hooks.checkpoint.interval': 1}))
    dumped = (work / 'tiny_seg.py').read_text()
    assert "type='CPUAmpOptimWrapper'" in dumped
    assert 'autocast_modules=None' in dumped
    losses = train_losses(work)
    assert len(losses) == 1 and math.isfinite(losses[0])

    metrics = run_testing(config_for_testing(
        str(tiny_seg_cfg), str(work / 'iter_1.pth'), work_dir=str(tmp_path / 'test'),
        amp=True, tta=True, cfg_options={'test_dataloader.dataset.indices': 1}))
    assert {'aAcc', 'mIoU', 'mAcc'} <= metrics.keys()
    dumped = (tmp_path / 'test' / 'tiny_seg.py').read_text()
    # a segmentor runs wholly in bfloat16: mmengine's TestLoop autocasts each step
    assert "fp16=True" in dumped and "type='CPUAutocastHook'" not in dumped
    assert "type='SegTTAModel'" in dumped


def test_det_train_amp_then_test_amp(tiny_det_cfg, tmp_path):
    """Mask R-CNN: mmcv's CPU nms / RoIAlign take float32 only, so --amp
    autocasts the backbone and neck; one iteration trains, test.py --amp
    evaluates."""
    from projects.internimage.apis import (config_for_testing, config_for_training,
                                           run_testing, run_training)
    work = tmp_path / 'train'
    run_training(config_for_training(str(tiny_det_cfg), work_dir=str(work), amp=True))
    dumped = (work / 'tiny_det.py').read_text()
    assert "type='CPUAmpOptimWrapper'" in dumped
    assert "'backbone'" in dumped and "'neck'" in dumped
    losses = train_losses(work)
    assert len(losses) == 1 and math.isfinite(losses[0])

    metrics = run_testing(config_for_testing(
        str(tiny_det_cfg), str(work / 'epoch_1.pth'), work_dir=str(tmp_path / 'test'),
        amp=True))
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= metrics.keys()


def test_det_tta_refused_before_anything_is_built(monkeypatch, tmp_path):
    """test.py --tta on Mask R-CNN stops with mmdet's message while the
    config is prepared: before the Runner (and the model) is built or the
    checkpoint opened."""
    from projects.internimage.apis import config_for_testing
    with pytest.raises(NotImplementedError,
                       match='TTA of instance segmentation does not '
                       'support now.*MaskRCNN'):
        config_for_testing(str(DET_CFG), str(tmp_path / 'missing.pth'),
                           work_dir=str(tmp_path), tta=True)


@pytest.mark.parametrize('name, masks', [
    ('coco/mask_rcnn_internimage_t_fpn_1x_coco.py', True),
    ('coco/cascade_internimage_l_fpn_1x_coco.py', True),
    ('coco/dino_4scale_internimage_t_1x_coco_layer_wise_lr.py', False),
])
def test_instance_segmentation_detected(name, masks):
    from projects.internimage.apis import load_config
    from projects.internimage.apis.runner_options import (check_tta_supported,
                                                          is_instance_segmentation)
    cfg = load_config(str(REPO_ROOT / 'configs' / name))
    assert is_instance_segmentation(cfg.model) is masks
    if masks:
        with pytest.raises(NotImplementedError):
            check_tta_supported(cfg)
    else:
        check_tta_supported(cfg)


def test_demo_seg_tta_at_demo_scale():
    """The demo's TTA scales are the recipe's ratios (0.5..1.75) of its own
    test scale (short side 128), not of the T recipe's 512."""
    from projects.internimage.apis import load_config
    cfg = load_config(str(SEG_CFG))
    test_resize, = [t for t in cfg.test_pipeline if t['type'] == 'Resize']
    long_side, short_side = test_resize['scale']
    tta, = [t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug']
    scales = [t['scale'] for t in tta['transforms'][0]]
    ratios = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    assert scales == [(int(long_side * r), int(short_side * r))
                      for r in ratios]
    assert max(s for _, s in scales) <= 2 * short_side == 256
