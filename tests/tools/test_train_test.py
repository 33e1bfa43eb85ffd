"""Tiny runs through the real tools: train, checkpoint, resume, test, and
two-process CPU training with tools/dist_train.sh."""
import glob
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch
from tests.helpers import REPO_ROOT

DEMO = REPO_ROOT / 'configs' / 'demo'


def run(cmd: List[str], log: Path, timeout: int = 600) -> str:
    """Run ``cmd`` from outside the repository (the tools must find it on
    their own); fail with the end of its output."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run(cmd, cwd=log.parent, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    log.write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_metrics(work_dir: Path) -> dict:
    """The metrics of the newest test run in ``work_dir``."""
    logs = sorted(glob.glob(str(work_dir / '*' / '*.json')),
                  key=os.path.getmtime)
    assert logs, f'no metrics json in {work_dir}'
    return json.loads(Path(logs[-1]).read_text().strip().splitlines()[-1])


test_metrics.__test__ = False  # a helper, not a test


def test_train_resume_test(tiny_seg_cfg, tmp_path):
    """Train 4 iterations (checkpoints at 2 and 4); resume a second run from
    iteration 2 (``--resume CKPT``): it restarts at iteration 2 and reaches
    the same iteration-4 weights; a third run with a bare ``--resume`` finds
    that run's latest checkpoint and has nothing left to do; then
    tools/test.py evaluates the checkpoint."""
    train = str(REPO_ROOT / 'tools' / 'train.py')
    test = str(REPO_ROOT / 'tools' / 'test.py')
    first, second = tmp_path / 'first', tmp_path / 'second'
    run([sys.executable, train, str(tiny_seg_cfg), '--work-dir', str(first)],
        tmp_path / 'first.log')
    assert (first / 'iter_2.pth').is_file() and (first / 'iter_4.pth').is_file()

    out = run([
        sys.executable, train,
        str(tiny_seg_cfg), '--work-dir',
        str(second), '--resume',
        str(first / 'iter_2.pth')
    ], tmp_path / 'second.log')
    assert 'resumed epoch: 0, iter: 2' in out
    assert not (second / 'iter_2.pth').exists()  # only iterations 3-4 ran
    ref = torch.load(first / 'iter_4.pth', map_location='cpu',
                     weights_only=False)
    res = torch.load(second / 'iter_4.pth', map_location='cpu',
                     weights_only=False)
    assert res['meta']['iter'] == ref['meta']['iter'] == 4
    assert ref['state_dict'].keys() == res['state_dict'].keys()
    for key, value in ref['state_dict'].items():
        torch.testing.assert_close(res['state_dict'][key], value,
                                   atol=1e-5, rtol=1e-4, msg=key)

    out = run([sys.executable, train, str(tiny_seg_cfg), '--work-dir', str(second),
               '--resume'], tmp_path / 'third.log')
    assert 'resumed epoch: 0, iter: 4' in out and 'Iter(train) [' not in out

    preds = tmp_path / 'preds'
    run([
        sys.executable, test,
        str(tiny_seg_cfg),
        str(second / 'iter_4.pth'), '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(preds)
    ], tmp_path / 'test.log')
    metrics = test_metrics(tmp_path / 'test')
    assert {'aAcc', 'mIoU', 'mAcc'} <= metrics.keys()
    assert len(list(preds.glob('*.png'))) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only path')
def test_dist_train_two_cpu_processes(tmp_path, synthetic_data):
    """tools/dist_train.sh CONFIG 2 trains Mask R-CNN with two gloo
    processes; tools/test.py evaluates (COCO bbox and segm) the result."""
    cfg = str(DEMO / 'mask_rcnn_internimage_demo.py')
    root = str(synthetic_data / 'coco') + '/'
    ann = root + 'annotations/instances_val2017.json'
    data = [
        f'train_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]
    work = tmp_path / 'det'
    env_port = free_port()
    out = run([
        'bash', '-c', f'PORT={env_port} PYTHON={sys.executable} "$0" "$@"',
        str(REPO_ROOT / 'tools' / 'dist_train.sh'), cfg, '2', '--work-dir',
        str(work), '--cfg-options', 'train_cfg.max_epochs=2',
        'train_cfg.val_interval=10', *data
    ], tmp_path / 'dist.log')
    assert 'Distributed training: True' in out
    assert "dist_cfg: {'backend': 'gloo'}" in out
    # 4 images, 2 processes x 2 images: one iteration per epoch
    assert 'Epoch(train) [2][1/1]' in out
    ckpt = (work / 'last_checkpoint').read_text().strip()
    assert ckpt.endswith('epoch_2.pth')

    pkl = tmp_path / 'det.pkl'
    run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'test.py'), cfg, ckpt, '--work-dir',
        str(tmp_path / 'det_test'), '--out',
        str(pkl), '--cfg-options', *data
    ], tmp_path / 'det_test.log')
    metrics = test_metrics(tmp_path / 'det_test')
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'
            } <= metrics.keys()
    assert pkl.is_file()
