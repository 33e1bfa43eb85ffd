"""Safe loading by default: the allowlist is what real checkpoints carry, and
a file whose pickle would run code is refused through every entry point,
unless the user declared it trusted.

The allowlisted files: a checkpoint mmengine's Runner writes (message hub
with ``HistoryBuffer`` and numpy values, ``meta`` with the config text and
mmdet's / mmseg's dataset meta, optimizer, schedulers, best score), one
built as mmcv 1.x's ``save_checkpoint`` and mmdet 2.x / mmseg 0.x's training
write it (what the reference's detection and segmentation checkpoints are),
and one as the reference's classification training writes it (its yacs
config, optimizer, scheduler, AMP scaler, EMA weights).
"""
import collections
import io
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

import projects.internimage.compat  # noqa: F401  (the project's checkpoint loaders)
import tests.engine.toy  # noqa: F401
from projects.internimage.checkpoint import load_pretrained
from projects.internimage.checkpoint.reader import (SAFE_GLOBALS, TRUST_CFG_KEY, TRUST_ENV,
                                                    UnsafeCheckpointError,
                                                    allowed_global_names, pickle_globals,
                                                    read_checkpoint)
from tests.engine.test_resume import config
from tests.helpers import REPO_ROOT, TINY

TORCH_GLOBALS = set(__import__('torch._weights_only_unpickler', fromlist=['x'])
                    ._get_allowed_globals())


def file_globals(path: Path):
    data = path.read_bytes()
    return pickle_globals(data, data.startswith(b'PK'))


def project_globals(path: Path):
    """The globals of a file beyond torch's own allowlist."""
    return sorted(set(file_globals(path)) - TORCH_GLOBALS)


# -- the real files -----------------------------------------------------------

@pytest.fixture(scope='module')
def mmengine_file(tmp_path_factory) -> Path:
    """A checkpoint of mmengine's Runner, with mmdet's COCO meta in it and
    a best-score validation."""
    from mmdet.datasets import CocoDataset
    work = tmp_path_factory.mktemp('mmengine')
    cfg = config(work, 'safe', True, rng_hook=True)
    cfg['train_dataloader']['dataset']['metainfo'] = CocoDataset.METAINFO
    cfg['default_hooks']['checkpoint'].update(save_best='mse', rule='less')
    Runner(**cfg).train()
    return work / 'epoch_2.pth'


@pytest.fixture(scope='module')
def mmseg_meta_file(tmp_path_factory) -> Path:
    from mmseg.datasets import ADE20KDataset
    work = tmp_path_factory.mktemp('mmseg')
    cfg = config(work, 'safe_seg', False, rng_hook=False)
    cfg['train_dataloader']['dataset']['metainfo'] = ADE20KDataset.METAINFO
    Runner(**cfg).train()
    return work / 'iter_8.pth'


def mmcv1_checkpoint(segmentation: bool = False) -> dict:
    """What mmcv 1.x's ``save_checkpoint`` writes for an mmdet 2.x / mmseg
    0.x ``EpochBasedRunner``/``IterBasedRunner``: ``meta`` (the runner's
    meta: env_info, config text, seed, exp_name, hook_msgs; the checkpoint
    hook's meta: mmdet_version/mmseg_version, CLASSES (and PALETTE); epoch,
    iter, mmcv_version, time.asctime()), ``state_dict`` (an OrderedDict with
    ``_metadata``, as mmcv's ``get_state_dict`` and ``weights_to_cpu``
    build it) and ``optimizer`` (SGD with momentum / AdamW state)."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    state = collections.OrderedDict((k, v.cpu()) for k, v in model.state_dict().items())
    state._metadata = getattr(model.state_dict(), '_metadata', collections.OrderedDict())
    classes = ('wall', 'building', 'sky') if segmentation else ('person', 'bicycle', 'car')
    meta = dict(env_info='sys.platform: linux\nPython: 3.7.11', config="model = dict(type='X')",
                seed=np.int64(2022) if segmentation else 0,
                exp_name='upernet_internimage_t_512_160k_ade20k.py',
                hook_msgs=dict(last_ckpt='/work_dirs/x/iter_160000.pth',
                               # mmseg 0.x's metrics are numpy floats; mmdet 2.x's floats
                               best_score=np.float64(0.4705) if segmentation else 0.472,
                               best_ckpt='/work_dirs/x/best_mIoU_iter_144000.pth'),
                epoch=12, iter=88000, mmcv_version='1.5.0', time=time.asctime(),
                CLASSES=classes)
    if segmentation:
        meta.update(mmseg_version='0.27.0', PALETTE=[[120, 120, 120], [180, 120, 120],
                                                      [6, 230, 230]])
    else:
        meta.update(mmdet_version='2.28.1',
                    fp16=dict(loss_scaler=dict(scale=512.0, growth_factor=2.0,
                                               backoff_factor=0.5, growth_interval=1000,
                                               _growth_tracker=0)))
    return dict(meta=meta, state_dict=state, optimizer=optimizer.state_dict())


def reference_classification_checkpoint() -> dict:
    """What the reference's classification training writes
    (``classification/utils.py``'s ``save_checkpoint``): the model, the
    optimizer, the timm scheduler's state, the max accuracy, the epoch,
    its yacs config, the AMP scaler and the EMA model."""
    from yacs.config import CfgNode
    cfg = CfgNode(new_allowed=True)
    cfg.MODEL = CfgNode(new_allowed=True)
    cfg.MODEL.TYPE = 'intern_image'
    cfg.MODEL.INTERN_IMAGE = CfgNode(new_allowed=True)
    cfg.MODEL.INTERN_IMAGE.DEPTHS = [4, 4, 18, 4]
    cfg.MODEL.INTERN_IMAGE.OFFSET_SCALE = 1.0
    cfg.TRAIN = CfgNode(new_allowed=True)
    cfg.TRAIN.BASE_LR = 5e-4
    cfg.TRAIN.EMA = CfgNode(new_allowed=True)
    cfg.TRAIN.EMA.ENABLE = True
    cfg.AMP_OPT_LEVEL = 'O1'
    cfg.OUTPUT = 'work_dirs/internimage_t_1k_224'
    cfg.freeze()
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    scaler = dict(scale=65536.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                  _growth_tracker=17)  # torch.cuda.amp.GradScaler.state_dict()
    return dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                lr_scheduler=dict(t_initial=300, lr_min=1e-5, warmup_t=20, cycle_mul=1.0,
                                  base_values=[5e-4]),
                max_accuracy=83.45, epoch=299, config=cfg, amp=scaler,
                model_ema=collections.OrderedDict(model.state_dict()),
                max_accuracy_ema=83.51)


@pytest.fixture(scope='module')
def real_files(mmengine_file, mmseg_meta_file, tmp_path_factory):
    out = tmp_path_factory.mktemp('real')
    files = {'mmengine_runner_coco_meta': mmengine_file,
             'mmengine_runner_ade20k_meta': mmseg_meta_file}
    for name, ckpt, legacy in [('mmdet2', mmcv1_checkpoint(), False),
                               ('mmseg0', mmcv1_checkpoint(segmentation=True), False),
                               ('mmseg0_legacy_format', mmcv1_checkpoint(True), True),
                               ('reference_classification',
                                reference_classification_checkpoint(), False)]:
        files[name] = out / f'{name}.pth'
        torch.save(ckpt, files[name], _use_new_zipfile_serialization=not legacy)
    return files


def test_real_checkpoints_load_weights_only(real_files):
    allowed = set(allowed_global_names())
    seen = set()
    for name, path in real_files.items():
        found = project_globals(path)
        assert set(found) <= allowed, (name, found)
        seen |= set(found)
        ckpt = read_checkpoint(str(path), allow_unsafe=False)
        assert isinstance(ckpt, dict) and ckpt, name
    # what the files needed beyond torch's own types
    assert {'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr',
            'numpy.core.multiarray._reconstruct', 'numpy.core.multiarray.scalar',
            'numpy.ndarray', 'numpy.dtype', 'yacs.config.CfgNode'} <= seen
    ref = read_checkpoint(str(real_files['reference_classification']), allow_unsafe=False)
    assert ref['config']['MODEL']['INTERN_IMAGE']['DEPTHS'] == [4, 4, 18, 4]
    mmseg0 = read_checkpoint(str(real_files['mmseg0']), allow_unsafe=False)
    assert mmseg0['meta']['hook_msgs']['best_score'] == pytest.approx(0.4705)
    assert list(mmseg0['state_dict']._metadata)  # mmcv's state dict metadata kept


def test_every_allowlisted_global_is_carried_by_a_real_file(real_files):
    """No entry of the allowlist is there without a file that needs it
    (aliases of one entry under another module name count as that entry)."""
    seen = set()
    for path in real_files.values():
        seen |= set(project_globals(path))
    aliases = {'__builtin__.getattr': 'builtins.getattr',
               'numpy._core.multiarray._reconstruct': 'numpy.core.multiarray._reconstruct',
               'numpy._core.multiarray.scalar': 'numpy.core.multiarray.scalar'}
    for entry in SAFE_GLOBALS:
        name = entry[1] if isinstance(entry, tuple) else \
            f'{entry.__module__}.{entry.__qualname__}'
        if name.startswith('numpy.dtypes.'):
            continue  # one class per dtype: numpy >= 1.25 pickles dtypes through them
        assert aliases.get(name, name) in seen, name


# -- planted code -------------------------------------------------------------

def planted(directory: Path, kind: str, marker: Path) -> Path:
    """A checkpoint-like file whose unpickling runs ``touch MARKER``."""

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    content = {'state_dict': {'w': torch.zeros(2)}, 'meta': {'x': Payload()}}
    path = directory / f'planted_{kind}.pth'
    if kind == 'raw_pickle':  # (a tensor in a raw pickle is code too: torch.storage)
        content['state_dict'] = {'w': [0.0, 0.0]}
        path.write_bytes(pickle.dumps(content, protocol=4))
    else:
        torch.save(content, path, _use_new_zipfile_serialization=kind == 'zip')
    return path


KINDS = ['zip', 'legacy', 'raw_pickle']


def assert_refused(error: BaseException, path: Path, marker: Path) -> None:
    text = str(error)
    assert f'{path} is not allowed: its pickle imports posix.system' in text, text
    assert TRUST_ENV in text and TRUST_CFG_KEY in text
    assert 'damaged' not in text
    assert not marker.exists()


def _toy_cfg(work: Path, **kwargs) -> dict:
    cfg = config(work, f'planted{time.monotonic_ns()}', True, rng_hook=False)
    cfg['train_cfg']['max_epochs'] = 1
    cfg.update(kwargs)
    return cfg


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('entry', ['load_pretrained', 'init_cfg_pretrained', 'load_from',
                                   'resume'])
def test_planted_code_runs_through_no_entry_point(tmp_path, kind, entry):
    marker = tmp_path / 'MARKER'
    path = planted(tmp_path, kind, marker)
    from projects.internimage import InternImage
    with pytest.raises(UnsafeCheckpointError) as info:
        if entry == 'load_pretrained':
            load_pretrained(InternImage(**TINY), str(path))
        elif entry == 'init_cfg_pretrained':
            InternImage(**TINY, init_cfg=dict(type='Pretrained',
                                              checkpoint=str(path))).init_weights()
        elif entry == 'load_from':
            Runner(**_toy_cfg(tmp_path / 'w', load_from=str(path))).train()
        else:
            Runner(**_toy_cfg(tmp_path / 'w', load_from=str(path), resume=True)).train()
    assert_refused(info.value, path, marker)


def test_planted_code_through_tools_test(tmp_path, tiny_seg_cfg):
    marker = tmp_path / 'MARKER'
    path = planted(tmp_path, 'zip', marker)
    env = dict(os.environ)
    env.pop(TRUST_ENV, None)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / 'test.py'),
                           str(tiny_seg_cfg), str(path), '--work-dir', str(tmp_path / 'w')],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'UnsafeCheckpointError' in proc.stdout, proc.stdout[-3000:]
    assert_refused(proc.stdout.split('UnsafeCheckpointError: ', 1)[1], path, marker)


# -- the opt-in ---------------------------------------------------------------

def trusted_legacy_file(tmp_path: Path) -> Path:
    """A legacy-format file with a harmless object outside the allowlist
    (``fractions.Fraction``)."""
    import fractions
    path = tmp_path / 'trusted_legacy.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'ratio': fractions.Fraction(1, 3)}},
               path, _use_new_zipfile_serialization=False)
    return path


def test_a_trusted_legacy_file_loads_by_environment_variable(tmp_path, monkeypatch):
    path = trusted_legacy_file(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=r'imports fractions\.Fraction'):
        read_checkpoint(str(path))
    monkeypatch.setenv(TRUST_ENV, os.pathsep.join(['/elsewhere.pth', str(path)]))
    ckpt = read_checkpoint(str(path))
    assert ckpt['meta']['ratio'] == pytest.approx(1 / 3)
    # and the opt-in is what lets code run: the planted file now runs it
    marker = tmp_path / 'MARKER'
    planted_path = planted(tmp_path, 'legacy', marker)
    monkeypatch.setenv(TRUST_ENV, str(planted_path))
    read_checkpoint(str(planted_path))
    assert marker.exists()


def test_a_trusted_legacy_file_loads_by_cfg_options(tmp_path, tiny_seg_cfg):
    from projects.internimage.apis import load_config
    from projects.internimage.checkpoint.reader import trust_checkpoints
    path = trusted_legacy_file(tmp_path)
    try:
        load_config(str(tiny_seg_cfg), cfg_options={TRUST_CFG_KEY: str(path)})
        assert torch.equal(read_checkpoint(str(path))['state_dict']['w'], torch.ones(2))
        load_config(str(tiny_seg_cfg))  # a config without the key trusts nothing
        with pytest.raises(UnsafeCheckpointError):
            read_checkpoint(str(path))
        with pytest.raises(TypeError, match='trusted_checkpoints must be a path or a list'):
            load_config(str(tiny_seg_cfg), cfg_options={TRUST_CFG_KEY: 3})
    finally:
        trust_checkpoints(None)


def test_damage_is_still_damage(tmp_path):
    path = tmp_path / 'garbage.pth'
    path.write_bytes(b'\x80\x02' + bytes(range(200)))
    with pytest.raises(Exception) as info:
        read_checkpoint(str(path))
    assert 'is not a valid checkpoint' in str(info.value)
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_stream_scan_names_globals_in_order():
    data = io.BytesIO()
    torch.save({'a': np.float64(1.0), 'b': collections.OrderedDict()}, data,
               _use_new_zipfile_serialization=False)
    names = pickle_globals(data.getvalue(), is_zip=False)
    assert names.index('numpy.core.multiarray.scalar') < names.index('collections.OrderedDict')
