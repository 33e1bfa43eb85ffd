"""Exact resume: 2 epochs (or 8 iterations) in one go equal 1 + resume 1
(4 + resume 4) with :class:`RNGStateHook`, bit for bit; without it they differ.

The toy training draws from python's, numpy's and torch's generators
(augmentation noise and flips, dropout, shuffling) and validates after every
epoch (the validation draws too), on the real mmengine Runner.
"""
import copy
from typing import Dict, List

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

import projects.internimage.compat  # noqa: F401  (loads mmengine checkpoints on torch >= 2.6)
import tests.engine.toy  # noqa: F401  (registers the toy model, data set, metric)
from projects.internimage.engine import CHECKPOINT_KEY, RNGStateHook


class RecordLosses(Hook):
    """Every training loss, in order."""

    def __init__(self) -> None:
        self.losses: List[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(outputs['loss'].item())


def config(work_dir, name: str, by_epoch: bool, rng_hook: bool) -> dict:
    loader = dict(dataset=dict(type='ToyNoiseDataset', length=12), batch_size=4,
                  num_workers=0, collate_fn=dict(type='default_collate'))
    if by_epoch:
        train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
        sampler = dict(type='DefaultSampler', shuffle=True)
        checkpoint = dict(type='CheckpointHook', interval=1)
    else:
        train_cfg = dict(by_epoch=False, max_iters=8, val_interval=4)
        sampler = dict(type='InfiniteSampler', shuffle=True)
        checkpoint = dict(type='CheckpointHook', interval=4, by_epoch=False)
    return dict(
        model=dict(type='ToyRegressor'),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(loader, sampler=sampler),
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=dict(type='ToyMSEMetric'),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=6)],
        train_cfg=train_cfg,
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='RNGStateHook')] if rng_hook else [],
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmengine',
        log_level='WARNING',
    )


def train(cfg: dict, stop_after: int = 0, resume: bool = False) -> Dict:
    cfg = copy.deepcopy(cfg)
    recorder = RecordLosses()
    cfg['custom_hooks'] = cfg['custom_hooks'] + [recorder]
    if stop_after:
        cfg['custom_hooks'].append(dict(type='StopTrainingHook', after=stop_after,
                                        by_epoch=cfg['train_cfg']['by_epoch']))
    cfg['experiment_name'] += f'_{stop_after}_{resume}'
    runner = Runner(**cfg, resume=resume)
    runner.train()
    return dict(state=copy.deepcopy(runner.model.state_dict()),
                optim=copy.deepcopy(runner.optim_wrapper.state_dict()),
                losses=recorder.losses, iter=runner.iter)


def run_both(tmp_path, by_epoch: bool, rng_hook: bool):
    """(uninterrupted, interrupted + resumed) runs."""
    tag = f'{"epoch" if by_epoch else "iter"}_{rng_hook}'
    whole = train(config(tmp_path / f'{tag}_whole', tag + 'w', by_epoch, rng_hook))
    cfg = config(tmp_path / f'{tag}_split', tag + 's', by_epoch, rng_hook)
    first = train(cfg, stop_after=1 if by_epoch else 4)
    second = train(cfg, resume=True)
    return whole, first, second


def assert_same_optim(a, b, path='optimizer'):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same_optim(a[key], b[key], f'{path}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_optim(x, y, f'{path}[{i}]')
    else:
        assert a == b, path


@pytest.mark.parametrize('by_epoch', [True, False], ids=['epoch_based', 'iter_based'])
def test_resumed_run_equals_uninterrupted_run(tmp_path, by_epoch):
    whole, first, second = run_both(tmp_path, by_epoch, rng_hook=True)
    n = 6 if by_epoch else 8  # iterations in all (3 a epoch)
    assert whole['iter'] == second['iter'] == n and first['iter'] == n // 2
    assert len(whole['losses']) == n and first['losses'] + second['losses'] == whole['losses']
    for key, value in whole['state'].items():
        assert torch.equal(value, second['state'][key]), key
    assert_same_optim(whole['optim'], second['optim'])


def test_without_the_hook_the_resumed_run_differs(tmp_path):
    """The test above can fail: without the hook, epoch 2 draws other numbers."""
    whole, first, second = run_both(tmp_path, True, rng_hook=False)
    assert first['losses'] == whole['losses'][:3]  # epoch 1 is identical
    assert second['losses'] != whole['losses'][3:]
    diff = max((v - second['state'][k]).abs().max().item() for k, v in whole['state'].items()
               if v.is_floating_point())
    assert diff > 1e-4


def test_checkpoint_holds_every_rank_state_and_loads_weights_only(tmp_path):
    from projects.internimage.checkpoint.reader import read_checkpoint
    cfg = config(tmp_path, 'ckpt', True, rng_hook=True)
    train(cfg, stop_after=1)
    ckpt = read_checkpoint(str(tmp_path / 'epoch_1.pth'), allow_unsafe=False)
    states = ckpt[CHECKPOINT_KEY]
    assert isinstance(states, list) and len(states) == 1
    assert set(states[0]) >= {'python', 'numpy', 'torch'}
    assert isinstance(RNGStateHook(), Hook)


class RecordStart(Hook):
    """The weights and torch generator state training starts from."""

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        self.weights = copy.deepcopy(runner.model.state_dict())

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not hasattr(self, 'rng'):
            self.rng = torch.get_rng_state()


def test_load_from_loads_weights_but_keeps_the_seeded_generators(tmp_path):
    from projects.internimage.checkpoint.reader import read_checkpoint
    cfg = config(tmp_path / 'src', 'src', True, rng_hook=True)
    train(cfg, stop_after=1)
    ckpt = tmp_path / 'src' / 'epoch_1.pth'
    starts = []
    for load_from in (None, str(ckpt)):
        run = config(tmp_path / f'dst_{bool(load_from)}', f'dst{bool(load_from)}', True,
                     rng_hook=True)
        run['train_cfg']['max_epochs'] = 1
        start = RecordStart()
        run['custom_hooks'].append(start)
        Runner(**run, load_from=load_from).train()
        starts.append(start)
    saved = read_checkpoint(str(ckpt))['state_dict']
    assert all(torch.equal(starts[1].weights[k], v) for k, v in saved.items())
    assert torch.equal(starts[0].rng, starts[1].rng)  # not the checkpoint's states


@pytest.mark.parametrize('by_epoch, save_best, gathers, steps', [
    # runner.iter at each gathering (3 iterations an epoch; an iteration-based
    # loop counts the current iteration from 0 in after_train_iter)
    (True, None, [6, 12], ['2', '4']),  # after epochs 2 and 4 (checkpoints), not 1 and 3
    # and before each validation: a best checkpoint may follow (epoch 3's did)
    (True, 'mse', [3, 6, 6, 9, 12, 12], ['2', '3', '4']),
    (False, None, [5, 11], ['12', '6']),  # iterations 6 and 12 of 12
])
def test_states_are_gathered_only_when_a_checkpoint_is_written(tmp_path, monkeypatch, by_epoch,
                                                               save_best, gathers, steps):
    """Every rank sends its states to all others (``all_gather_object``)
    only when a checkpoint is written."""
    from projects.internimage.checkpoint.reader import read_checkpoint
    cfg = config(tmp_path, 'gathers', by_epoch, rng_hook=True)
    if by_epoch:
        cfg['train_cfg'].update(max_epochs=4)
        cfg['default_hooks']['checkpoint'].update(interval=2, save_best=save_best, rule='less')
    else:
        cfg['train_cfg'].update(max_iters=12)
        cfg['default_hooks']['checkpoint'].update(interval=6)
    seen, runners = [], []
    original = RNGStateHook._gather

    def counting(hook):
        seen.append(runners[0].iter)
        original(hook)

    monkeypatch.setattr(RNGStateHook, '_gather', counting)
    runners.append(Runner(**cfg))
    runners[0].train()
    assert seen == gathers
    saved = sorted(tmp_path.glob('*_[0-9]*.pth'))
    assert [p.stem.split('_')[-1] for p in saved if not p.name.startswith('best')] == steps
    for path in saved:
        assert len(read_checkpoint(str(path))[CHECKPOINT_KEY]) == 1
