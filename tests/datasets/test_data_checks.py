"""Data that would train silently wrong is reported: the check tool on
synthetic sets with each fault, the training-time hook, and sample errors
that name the file. Real mmdet ``CocoDataset`` / mmseg ``BaseSegDataset``
read the files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from projects.internimage.apis.data_check import check_config_data
from projects.internimage.datasets import DataCheckHook, SampleLoadError
from tests.helpers import REPO_ROOT

DET_CFG = str(REPO_ROOT / 'configs' / 'demo' / 'mask_rcnn_internimage_demo.py')
SEG_CFG = str(REPO_ROOT / 'configs' / 'demo' / 'upernet_internimage_demo.py')


@pytest.fixture
def data(tmp_path) -> Path:
    from projects.internimage.apis.synthetic_data import generate
    generate(str(tmp_path / 'data'), coco_num=(6, 2), ade_num=(4, 2), size=64)
    return tmp_path / 'data'


def det_options(data: Path) -> dict:
    root = str(data / 'coco') + '/'
    return {'train_dataloader.dataset.data_root': root}


def seg_options(data: Path) -> dict:
    return {'train_dataloader.dataset.data_root': str(data / 'ade' / 'ADEChallengeData2016')}


def edit_coco(data: Path, edit) -> dict:
    path = data / 'coco' / 'annotations' / 'instances_train2017.json'
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))  # NaN written as NaN, as json.dump does
    return coco


def anns_of(coco: dict, image_id: int):
    return [a for a in coco['annotations'] if a['image_id'] == image_id]


def test_clean_sets_pass(data):
    for cfg, options in ((DET_CFG, det_options(data)), (SEG_CFG, seg_options(data))):
        report = check_config_data(cfg, 'train', options)
        assert report.ok, report.format()
        assert report.counts['images'] == (6 if cfg == DET_CFG else 4)


def test_detection_faults_are_named_with_counts(data):
    train = data / 'coco' / 'train2017'

    def faults(coco):
        a0, a1 = anns_of(coco, 1)[:2]
        a0['bbox'] = [float('nan')] * 4
        a1['bbox'][2] = -3.0
        anns_of(coco, 2)[0]['bbox'] = [500.0, 500.0, 10.0, 10.0]  # outside the 64x64 image
        anns_of(coco, 3)[0]['category_id'] = 99
        for ann in anns_of(coco, 4):  # every box NaN: the image is left with none
            ann['bbox'] = [float('nan')] * 4
        coco['images'][5]['width'] = 80  # the annotation says 80 wide
    coco = edit_coco(data, faults)
    (train / '000000.jpg').write_bytes(b'')  # image id 1: a zero-byte JPEG
    (train / '000002.jpg').write_bytes(b'not a jpeg at all')
    report = check_config_data(DET_CFG, 'train', det_options(data), progress=False)
    assert not report.ok
    problems = report.problems
    assert [e.split(':')[0] for e in problems['empty images']] == [str(train / '000000.jpg')]
    assert [e.split(':')[0] for e in problems['unreadable images']] == [
        str(train / '000002.jpg')]
    invalid = problems['invalid boxes']
    assert len(invalid) == 3 + len(anns_of(coco, 4))
    assert any('000000.jpg' in e and 'is not finite' in e for e in invalid)
    assert any('000000.jpg' in e and 'has a non-positive size' in e for e in invalid)
    assert any('000001.jpg' in e and 'outside the 64x64 image' in e for e in invalid)
    assert problems['annotations of unknown categories'] == [
        f'{train / "000002.jpg"}: annotation {anns_of(coco, 3)[0]["id"]}: category_id 99 '
        '(not in the categories) is not one of the 4 classes']
    # image 4 loses every box; images 1-3 lose theirs when the faults above
    # hit all they had (the synthetic images carry 1-3 shapes)
    left = [k for k, hit in ((1, 2), (2, 1), (3, 1)) if len(anns_of(coco, k)) == hit] + [4]
    assert [e.split(':')[0] for e in problems['images left without annotations']] == [
        str(train / f'{k - 1:06d}.jpg') for k in left]
    assert [e.split(':')[0] for e in problems['images of another size than their annotation']] \
        == [str(train / '000005.jpg')]
    assert report.counts['dropped_annotations'] == 4 + len(anns_of(coco, 4))
    text = report.format()
    assert f'PROBLEM: {len(invalid)} invalid boxes' in text


def test_the_tool_exits_non_zero_and_lists_the_files(data):
    edit_coco(data, lambda coco: anns_of(coco, 1)[0].update(bbox=[float('nan')] * 4))
    root = str(data / 'coco') + '/'
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    cmd = [sys.executable, str(REPO_ROOT / 'tools' / 'analysis' / 'check_dataset.py'), DET_CFG,
           '--split', 'train', '--cfg-options', f'train_dataloader.dataset.data_root={root}']
    proc = subprocess.run(cmd, cwd=data, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert 'PROBLEM: 1 invalid boxes' in proc.stdout
    assert f'{root}train2017/000000.jpg: annotation' in proc.stdout


def _label_path(data: Path, i: int) -> Path:
    return (data / 'ade' / 'ADEChallengeData2016' / 'annotations' / 'training'
            / f'ADE_training_{i:08d}.png')


def test_segmentation_faults_are_named(data):
    ann = [_label_path(data, i) for i in range(4)]
    labels = np.array(Image.open(ann[0]))
    # a 16-bit PNG: 257 would be read as 1
    Image.fromarray(labels.astype(np.uint16) + 256).save(ann[0])
    bad = np.array(Image.open(ann[1]))
    bad[0, 0] = 199
    Image.fromarray(bad).save(ann[1])
    Image.fromarray(np.array(Image.open(ann[2]))[:32]).save(ann[2])  # half the height
    img = (data / 'ade' / 'ADEChallengeData2016' / 'images' / 'training'
           / 'ADE_training_00000003.jpg')
    img.write_bytes(b'')
    report = check_config_data(SEG_CFG, 'train', seg_options(data), progress=False)
    p = report.problems
    assert [e.split(':')[0] for e in p['label maps of another bit depth']] == [str(ann[0])]
    assert 'PIL mode I;16' in p['label maps of another bit depth'][0]
    assert p['label maps with values outside the classes'] == [
        f'{ann[1]}: values 198 are outside the 5 classes (0..4, 255 ignored)']
    assert [e.split(':')[0] for e in p['label maps of another size than their image']] == [
        str(ann[2])]
    assert [e.split(':')[0] for e in p['empty images']] == [str(img)]


# -- sample errors name the file ------------------------------------------------

def _dataset(cfg: str, options: dict):
    from projects.internimage.apis import load_config
    from projects.internimage.datasets import build_split_dataset
    dataset = build_split_dataset(load_config(cfg, options), 'train')
    dataset.pipeline = DataCheckHook.checked(dataset, dataset.pipeline)
    return dataset


def test_a_zero_byte_jpeg_names_the_file(data):
    path = data / 'coco' / 'train2017' / '000000.jpg'
    path.write_bytes(b'')
    dataset = _dataset(DET_CFG, det_options(data))
    index = [i for i in range(len(dataset)) if dataset.get_data_info(i)['img_path'] == str(path)]
    with pytest.raises(SampleLoadError, match=rf'{path}: LoadImageFromFile failed: '):
        dataset.prepare_data(index[0])


@pytest.mark.parametrize('fault', ['out_of_range', '16_bit'])
def test_label_faults_name_the_file(data, fault):
    path = _label_path(data, 0)
    labels = np.array(Image.open(path))
    if fault == 'out_of_range':
        labels[3, 3] = 199
        Image.fromarray(labels).save(path)
        match = rf'{path}: label map values 198 are outside the 5 classes'
    else:
        Image.fromarray(labels.astype(np.uint16) + 256).save(path)
        match = rf'{path}: the label map is PIL mode I;16 .* would wrap its values modulo 256'
    dataset = _dataset(SEG_CFG, seg_options(data))
    index = [i for i in range(len(dataset))
             if dataset.get_data_info(i)['seg_map_path'] == str(path)][0]
    with pytest.raises(SampleLoadError, match=match):
        dataset.prepare_data(index)
    dataset.prepare_data((index + 1) % len(dataset))  # the good ones load


# -- at train time --------------------------------------------------------------

def _train_with_hook(data: Path, tmp_path: Path, max_dropped: float):
    """A real Runner over the detection demo's training set (0 iterations:
    the hook's checks run, nothing trains)."""
    from mmengine.runner import Runner

    from projects.internimage.apis import load_config
    cfg = load_config(DET_CFG, det_options(data), work_dir=str(tmp_path / 'work'))
    cfg.model.backbone.init_cfg = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=0)
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.custom_hooks = [dict(type='DataCheckHook', max_dropped=max_dropped)]
    cfg.runner_type = 'Runner'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_the_hook_warns_with_counts_and_stops_above_the_threshold(data, tmp_path, capsys):
    coco = edit_coco(data, lambda coco: anns_of(coco, 1)[0].update(bbox=[float('nan')] * 4))
    total = len(coco['annotations'])
    runner = _train_with_hook(data, tmp_path / 'a', max_dropped=0.5)
    out = capsys.readouterr().out
    assert (f'DataCheckHook: the training set drops 1 of its {total} annotations '
            f'({1 / total:.1%}) and leaves 0 of its 6 images without any') in out
    assert '000000.jpg: annotation' in out
    # and the pipelines name the files from now on
    from projects.internimage.datasets import CheckedCompose
    assert isinstance(runner.train_dataloader.dataset.pipeline, CheckedCompose)
    with pytest.raises(ValueError, match=r'drops 1 of its .* annotations(.|\n)*PROBLEM: 1 invalid '
                       r'boxes\n.*000000\.jpg: annotation(.|\n)*more than max_dropped=0\.01'):
        _train_with_hook(data, tmp_path / 'b', max_dropped=0.01)


def test_max_dropped_is_checked():
    with pytest.raises(ValueError, match=r'max_dropped must be a share in \[0, 1\], got 5'):
        DataCheckHook(max_dropped=5)
