"""What an mmdet / mmseg user runs on our demo configs: DetInferencer,
init_detector / inference_detector, MMSegInferencer, init_model /
inference_model, and demo/image_demo.py (its body
``projects.internimage.apis.inference.draw_predictions``, and the script),
with tiny checkpoints of the (untrained) demo models saved by the fixtures."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.helpers import REPO_ROOT

DET_CFG = REPO_ROOT / 'configs' / 'demo' / 'mask_rcnn_internimage_demo.py'
SEG_CFG = REPO_ROOT / 'configs' / 'demo' / 'upernet_internimage_demo.py'

NUM_DET_CLASSES, NUM_SEG_CLASSES = 4, 5


@pytest.fixture(scope='module')
def det_image(synthetic_data) -> Path:
    return sorted((synthetic_data / 'coco' / 'val2017').glob('*.jpg'))[0]


@pytest.fixture(scope='module')
def seg_image(synthetic_data) -> Path:
    root = synthetic_data / 'ade' / 'ADEChallengeData2016'
    return sorted((root / 'images' / 'validation').glob('*.jpg'))[0]


def image_hw(path: Path):
    width, height = Image.open(path).size
    return height, width


def test_det_inferencer_and_inference_detector(det_checkpoint, det_image,
                                               tmp_path):
    """Both mmdet APIs load the config and checkpoint and give the same
    instances (boxes inside the image, masks of the image's size, labels of
    the demo's 4 classes); DetInferencer draws the picture."""
    from mmdet.apis import DetInferencer, inference_detector, init_detector

    inferencer = DetInferencer(
        model=str(DET_CFG), weights=str(det_checkpoint), device='cpu',
        show_progress=False)
    assert list(inferencer.model.dataset_meta['classes']) == [
        'circle', 'rectangle', 'triangle', 'cross']
    out = inferencer(str(det_image), out_dir=str(tmp_path), no_save_pred=False)
    pred = out['predictions'][0]
    assert len(pred['scores']) > 0  # test_cfg keeps scores >= 0.05
    assert set(pred['labels']) <= set(range(NUM_DET_CLASSES))
    h, w = image_hw(det_image)
    boxes = np.array(pred['bboxes'])
    assert (boxes >= -1e-3).all() and (boxes[:, [0, 2]] <= w + 1e-3).all() \
        and (boxes[:, [1, 3]] <= h + 1e-3).all()
    vis = tmp_path / 'vis' / det_image.name
    assert Image.open(vis).size == (w, h)
    saved = json.loads((tmp_path / 'preds' / f'{det_image.stem}.json').read_text())
    assert len(saved['scores']) == len(pred['scores'])

    model = init_detector(str(DET_CFG), str(det_checkpoint), device='cpu')
    sample = inference_detector(model, str(det_image))
    inst = sample.pred_instances
    assert inst.masks.shape[1:] == (h, w)
    torch.testing.assert_close(
        inst.scores, torch.tensor(pred['scores']), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        inst.bboxes, torch.tensor(pred['bboxes']), atol=1e-3, rtol=1e-4)


def test_mmseg_inferencer_and_inference_model(seg_checkpoint, seg_image,
                                              tmp_path):
    """Both mmseg APIs give the same label map, of the image's size and of
    the demo's 5 classes; MMSegInferencer draws the picture."""
    from mmseg.apis import MMSegInferencer, inference_model, init_model

    inferencer = MMSegInferencer(
        model=str(SEG_CFG), weights=str(seg_checkpoint), device='cpu')
    out = inferencer(str(seg_image), out_dir=str(tmp_path))
    label = out['predictions']
    h, w = image_hw(seg_image)
    assert label.shape == (h, w)
    assert set(np.unique(label)) <= set(range(NUM_SEG_CLASSES))
    assert Image.open(tmp_path / 'vis' / seg_image.name).size == (w, h)

    model = init_model(str(SEG_CFG), str(seg_checkpoint), device='cpu')
    assert len(model.dataset_meta['classes']) == NUM_SEG_CLASSES
    sample = inference_model(model, str(seg_image))
    np.testing.assert_array_equal(sample.pred_sem_seg.data[0].numpy(), label)


def test_image_demo_script_on_a_folder(det_checkpoint, synthetic_data, tmp_path):
    """demo/image_demo.py on a folder: one picture and one prediction file
    per image, under a relative --out-dir."""
    images = synthetic_data / 'coco' / 'val2017'
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'demo' / 'image_demo.py'), str(images), str(DET_CFG),
         '--weights', str(det_checkpoint), '--out-dir', 'out'],
        cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True,
        text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(p.name for p in images.glob('*.jpg'))
    assert sorted(p.name for p in (tmp_path / 'out' / 'vis').iterdir()) == names
    assert len(list((tmp_path / 'out' / 'preds').glob('*.json'))) == len(names)
    assert f'{len(names)} picture(s) of predictions in out/vis' in result.stdout


def test_draw_predictions_segmentation(seg_checkpoint, seg_image, tmp_path, capsys):
    from projects.internimage.apis.inference import draw_predictions
    written = draw_predictions(str(seg_image), str(SEG_CFG), str(seg_checkpoint),
                               out_dir=str(tmp_path), opacity=0.6)
    assert written == [str(tmp_path / 'vis' / seg_image.name)]
    picture = np.array(Image.open(written[0]))
    assert picture.shape[:2] == image_hw(seg_image)
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 1
    assert f'1 picture(s) of predictions in {tmp_path}/vis' in capsys.readouterr().out


@pytest.mark.parametrize('img, config, weights, opacity, error', [
    ('missing.jpg', str(SEG_CFG), 'w.pth', 0.5, 'image or folder'),
    ('{img}', str(SEG_CFG), 'missing.pth', 0.5, 'checkpoint'),
    ('{img}', 'missing.py', '{ckpt}', 0.5, 'config file'),
    ('{img}', str(SEG_CFG), '{ckpt}', 0, 'opacity'),
])
def test_draw_predictions_bad_input(img, config, weights, opacity, error, seg_checkpoint,
                                    seg_image):
    from projects.internimage.apis.inference import draw_predictions
    args = [a.format(img=seg_image, ckpt=seg_checkpoint) for a in (img, config, weights)]
    with pytest.raises((FileNotFoundError, ValueError), match=error):
        draw_predictions(*args, opacity=opacity)
