"""Checkpoint rotation: write, then point, then remove; clean up after killed
writers; ``--resume`` falls back to the newest readable checkpoint.

The kill loop SIGKILLs a training run (the toy regression with a state of a
few MB, a checkpoint every iteration, ``max_keep_ckpts=1``) at random moments,
again and again, each new run resuming (``--resume``, through
``apis.config_for_training``) from what the last one left.
"""
import itertools
import multiprocessing
import os
import random
import signal
import socket
import time
from pathlib import Path
from typing import List

import pytest
import torch
from mmengine.runner import Runner

import projects.internimage.compat  # noqa: F401  (loads mmengine checkpoints)
import projects.internimage.engine.checkpoint_hook as hook_module
import tests.engine.toy  # noqa: F401
from projects.internimage.checkpoint.reader import checkpoint_problem, read_checkpoint
from projects.internimage.engine import AtomicCheckpointHook, AtomicLocalBackend
from projects.internimage.engine.atomic_backend import TMP_PATTERN
from tests.engine.test_resume import config
from tests.helpers import REPO_ROOT


_RUNS = itertools.count()


def rotation_config(work_dir, max_keep: int = 1, by_epoch: bool = True, epochs: int = 3,
                    save_best=None) -> dict:
    cfg = config(work_dir, f'rot{next(_RUNS)}', by_epoch, rng_hook=False)
    if by_epoch:
        cfg['train_cfg'].update(max_epochs=epochs)
    cfg['default_hooks']['checkpoint'].update(type='AtomicCheckpointHook',
                                              max_keep_ckpts=max_keep)
    if save_best:
        cfg['default_hooks']['checkpoint'].update(save_best=save_best, rule='less')
    else:
        cfg.pop('val_dataloader'), cfg.pop('val_evaluator'), cfg.pop('val_cfg')
        cfg['train_cfg'].pop('val_interval', None)
    return cfg


def regular_checkpoints(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.glob('*_[0-9]*.pth') if not p.name.startswith('best'))


def tmp_files(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir() if TMP_PATTERN.match(p.name))


def test_the_new_checkpoint_is_written_before_anything_is_removed(tmp_path, monkeypatch):
    events = []
    real_put = AtomicLocalBackend.put
    real_write, real_remove = hook_module.atomic_write, AtomicLocalBackend.remove
    monkeypatch.setattr(AtomicLocalBackend, 'put', lambda self, obj, path: (
        events.append(('write', Path(path).name)), real_put(self, obj, path))[1])
    monkeypatch.setattr(hook_module, 'atomic_write', lambda data, path: (
        events.append(('point', data.decode().rsplit('/', 1)[1])), real_write(data, path))[1])
    monkeypatch.setattr(AtomicLocalBackend, 'remove', lambda self, path: (
        events.append(('remove', Path(path).name)), real_remove(self, path))[1])
    Runner(**rotation_config(tmp_path)).train()
    assert events == [
        ('write', 'epoch_1.pth'), ('point', 'epoch_1.pth'),
        ('write', 'epoch_2.pth'), ('point', 'epoch_2.pth'), ('remove', 'epoch_1.pth'),
        ('write', 'epoch_3.pth'), ('point', 'epoch_3.pth'), ('remove', 'epoch_2.pth')]
    assert regular_checkpoints(tmp_path) == ['epoch_3.pth'] and not tmp_files(tmp_path)
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_3.pth')
    # the checkpoint lists the one it replaces: a resume removes it after a kill
    assert read_checkpoint(str(tmp_path / 'epoch_3.pth'))['message_hub']['runtime_info'][
        'keep_ckpt_ids'] == [2, 3]


def test_a_run_resumed_after_a_kill_before_the_removal_removes_the_old_file(tmp_path):
    Runner(**rotation_config(tmp_path, epochs=2)).train()
    # what a kill between `last_checkpoint` and the removal leaves: both files
    torch.save({'state_dict': {}}, tmp_path / 'epoch_1.pth')
    cfg = rotation_config(tmp_path, epochs=3)
    Runner(**cfg, resume=True).train()
    assert regular_checkpoints(tmp_path) == ['epoch_3.pth']


def test_a_replaced_best_checkpoint_is_removed_after_the_new_one_is_written(tmp_path,
                                                                           monkeypatch):
    events = []
    real_put, real_remove = AtomicLocalBackend.put, AtomicLocalBackend.remove
    monkeypatch.setattr(AtomicLocalBackend, 'put', lambda self, obj, path: (
        events.append(('write', Path(path).name)), real_put(self, obj, path))[1])
    monkeypatch.setattr(AtomicLocalBackend, 'remove', lambda self, path: (
        events.append(('remove', Path(path).name)), real_remove(self, path))[1])
    # the mse of the toy regression falls epoch after epoch: every epoch is best
    Runner(**rotation_config(tmp_path, epochs=3, save_best='mse')).train()
    writes = [name for kind, name in events if kind == 'write']
    assert 'best_mse_epoch_2.pth' in writes and 'best_mse_epoch_3.pth' in writes
    for old, new in [('best_mse_epoch_1.pth', 'best_mse_epoch_2.pth'),
                     ('best_mse_epoch_2.pth', 'best_mse_epoch_3.pth')]:
        assert events.index(('remove', old)) > events.index(('write', new))
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['best_mse_epoch_3.pth',
                                                              'epoch_3.pth']


def _dead_pid() -> int:
    proc = multiprocessing.get_context('fork').Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_partial_files_of_dead_writers_are_removed_at_the_next_start(tmp_path):
    host, dead = socket.gethostname(), _dead_pid()
    names = {f'.epoch_1.pth.tmp-{host}-{dead}': False,  # removed
             f'.epoch_1.pth.tmp-{dead}': False,  # earlier naming: this host
             f'.last_checkpoint.tmp-{host}-{dead}': False,
             f'.epoch_9.pth.tmp-{host}-{os.getpid()}': True,  # alive: kept
             f'.epoch_1.pth.tmp-other-host-{dead}': True}  # another host's: kept
    for name in names:
        (tmp_path / name).write_bytes(b'partial')
    cfg = rotation_config(tmp_path, epochs=1)
    Runner(**cfg).train()
    assert tmp_files(tmp_path) == sorted(n for n, kept in names.items() if kept)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize('damage', ['missing', 'truncated', 'empty_pointer'])
def test_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path, damage, capsys):
    Runner(**rotation_config(tmp_path, max_keep=-1, epochs=2)).train()
    if damage == 'missing':
        (tmp_path / 'epoch_2.pth').unlink()
    elif damage == 'truncated':
        _truncate(tmp_path / 'epoch_2.pth')
    else:
        (tmp_path / 'last_checkpoint').write_text('')
        _truncate(tmp_path / 'epoch_2.pth')
    cfg = rotation_config(tmp_path, max_keep=-1, epochs=3)
    cfg['log_level'] = 'INFO'
    runner = Runner(**cfg, resume=True)
    runner.train()
    assert runner.iter == 9 and runner.epoch == 3
    text = capsys.readouterr().out
    assert f'resuming from {tmp_path / "epoch_1.pth"}, the newest readable checkpoint' in text
    reason = {'missing': 'which does not exist', 'truncated': 'which is not a valid checkpoint',
              'empty_pointer': 'is empty'}[damage]
    assert reason in text
    assert 'Auto resumed from the latest checkpoint None' not in text


def test_resume_in_an_empty_work_dir_says_no_checkpoint_was_found(tmp_path, capsys):
    cfg = rotation_config(tmp_path, epochs=1)
    cfg['log_level'] = 'INFO'
    runner = Runner(**cfg, resume=True)
    runner.train()
    text = capsys.readouterr().out
    assert f'--resume: no checkpoint found in {tmp_path}: training starts from scratch' in text
    assert 'Auto resumed' not in text and runner.iter == 3


def test_checkpoint_problem():
    assert checkpoint_problem('/nonexistent/epoch_1.pth') == 'does not exist'


# -- the kill loop ----------------------------------------------------------

KILLS = 24
HIDDEN = 1 << 16  # 0.4M parameters: ~5 MB a checkpoint with AdamW's moments


def _kill_config(tmp_path: Path) -> Path:
    cfg = tmp_path / 'kill_loop.py'
    cfg.write_text(f'''
_base_ = [{str(REPO_ROOT / 'tests' / 'engine' / 'toy_train_config.py')!r}]
model = dict(hidden={HIDDEN})
train_dataloader = dict(sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
train_cfg = dict(_delete_=True, by_epoch=False, max_iters=10 ** 6)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=1, max_keep_ckpts=1),
    logger=dict(interval=10 ** 6))
custom_hooks = [dict(type='RNGStateHook'),
                dict(type='ReportStartHook', path={str(tmp_path / 'starts.txt')!r})]
log_level = 'WARNING'
randomness = dict(seed=0)
''')
    return cfg


def _train(config: str, work_dir: str, max_iters: int = 0) -> None:
    """A child process: tools/train.py CONFIG --work-dir W --resume."""
    import sys
    sys.stdout = sys.stderr = open(os.path.join(work_dir, f'child-{os.getpid()}.log'), 'w')
    torch.set_num_threads(1)
    from projects.internimage.apis import config_for_training, run_training
    options = {'train_cfg.max_iters': max_iters} if max_iters else None
    cfg = config_for_training(config, work_dir=work_dir, cfg_options=options, resume='auto')
    run_training(cfg)


def _starts(path: Path) -> List[List[int]]:
    return [list(map(int, line.split())) for line in path.read_text().splitlines()] \
        if path.exists() else []


def _newest_good(work: Path) -> int:
    """The step of the newest complete checkpoint (0: none)."""
    steps = [int(p.stem.split('_')[1]) for p in work.glob('iter_*.pth')
             if checkpoint_problem(str(p)) is None]
    return max(steps, default=0)


def _expected_resume(work: Path) -> int:
    """The step a resume must continue from: the checkpoint last_checkpoint
    names when it is complete, else the newest complete one (0: none)."""
    pointer = work / 'last_checkpoint'
    if pointer.exists() and checkpoint_problem(pointer.read_text()) is None:
        return int(Path(pointer.read_text()).stem.split('_')[1])
    return _newest_good(work)


def test_kill_9_at_random_moments_never_loses_the_last_checkpoint(tmp_path):
    config = str(_kill_config(tmp_path))
    work = tmp_path / 'work'
    work.mkdir()
    starts_file = tmp_path / 'starts.txt'
    from projects.internimage.apis import load_config
    load_config(config)  # the imports, once: the forked runs start at once
    import torch._inductor  # noqa: F401  (what Runner's set_randomness imports)
    ctx = multiprocessing.get_context('fork')
    rng = random.Random(0)
    figures = dict(kills=0, kills_during_a_write=0, resumed_from_checkpoint=0,
                   started_from_scratch=0, leftovers=0)
    previous = 0
    for kill in range(KILLS + 1):
        final = kill == KILLS
        expected = _expected_resume(work)
        proc = ctx.Process(target=_train, args=(config, str(work), expected + 3 if final else 0))
        proc.start()
        deadline = time.time() + 120
        while len(_starts(starts_file)) <= kill and proc.is_alive() and time.time() < deadline:
            time.sleep(0.01)
        starts = _starts(starts_file)
        log = next(work.glob(f'child-{proc.pid}.log'), None)
        assert len(starts) == kill + 1, log.read_text()[-3000:] if log else 'no log'
        pid, resumed_at = starts[-1]
        assert pid == proc.pid
        # --resume continued from the newest complete checkpoint, never behind
        assert resumed_at == expected >= previous, (kill, resumed_at, expected, previous)
        figures['resumed_from_checkpoint' if resumed_at else 'started_from_scratch'] += 1
        previous = resumed_at
        # the partial files of the killed runs were removed when this one started
        stale = [n for n in tmp_files(work) if not n.endswith(f'-{proc.pid}')]
        figures['leftovers'] += len(stale)
        assert not stale, stale
        if final:
            proc.join(120)
            assert proc.exitcode == 0, log.read_text()[-3000:]
            break
        if kill % 2:  # anywhere in the next few iterations and saves
            time.sleep(rng.uniform(0.0, 0.6))
        else:  # while a file is being written (checkpoint or last_checkpoint)
            writing = time.time() + 10
            while not any(n.endswith(f'-{proc.pid}') for n in tmp_files(work)) \
                    and time.time() < writing:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.005))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        figures['kills'] += 1
        figures['kills_during_a_write'] += any(n.endswith(f'-{proc.pid}')
                                               for n in tmp_files(work))
        # what the kill left: last_checkpoint names a complete checkpoint
        if (work / 'last_checkpoint').exists():
            named = (work / 'last_checkpoint').read_text()
            assert checkpoint_problem(named) is None, (kill, named)
        assert len(regular_checkpoints(work)) <= 2
    print(f'\nkill loop: {figures}')
    assert figures['kills'] == KILLS >= 20 and figures['leftovers'] == 0
    assert figures['resumed_from_checkpoint'] >= KILLS // 2
    # the last run ended normally: one checkpoint, pointed to, nothing partial
    last = _newest_good(work)
    assert regular_checkpoints(work) == [f'iter_{last}.pth'] and not tmp_files(work)
    assert (work / 'last_checkpoint').read_text() == str(work / f'iter_{last}.pth')
    assert read_checkpoint(str(work / f'iter_{last}.pth'))['meta']['iter'] == last
