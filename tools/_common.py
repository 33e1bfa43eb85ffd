"""Config handling shared by ``tools/train.py``, ``test.py`` and ``get_flops.py``.

One set of tools serves detection (``default_scope='mmdet'``) and
segmentation (``default_scope='mmseg'``) configs; what differs between the
two (registries, visualisation hook, ``--out``, test-time augmentation)
is decided here from the config's scope.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
import warnings
from copy import deepcopy
from typing import Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCOPES = ('mmdet', 'mmseg')


def add_repo_root_to_path() -> None:
    """Make ``projects.internimage`` and ``ops_dcnv3`` importable from anywhere.

    Configs load ``custom_imports=['projects.internimage']`` while being
    parsed, so this must run before ``Config.fromfile``.
    """
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    # child processes (dataloader workers, spawned ranks) inherit it too
    paths = os.environ.get('PYTHONPATH', '').split(os.pathsep)
    if REPO_ROOT not in paths:
        os.environ['PYTHONPATH'] = os.pathsep.join([REPO_ROOT] + [
            p for p in paths if p])


def set_local_rank(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local-rank`` only."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none'):
    """Load ``config``, merge ``--cfg-options`` and settle the work dir.

    The work dir is, by priority, ``work_dir``, the config's own
    ``work_dir``, then ``./work_dirs/<config name>``.
    """
    add_repo_root_to_path()
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    register_scope(cfg)
    return cfg


def scope_of(cfg) -> str:
    """The task scope of a config: 'mmdet' or 'mmseg'."""
    scope = cfg.get('default_scope', None)
    if scope not in SCOPES:
        raise ValueError(f'config default_scope must be one of {SCOPES}, '
                         f'got {scope!r}')
    return scope


def register_scope(cfg) -> None:
    """Register the modules of the config's task package and make it the
    default scope of the registries."""
    if scope_of(cfg) == 'mmdet':
        from mmdet.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)


def enable_amp(cfg) -> None:
    """Switch the optimizer wrapper to ``AmpOptimWrapper`` (dynamic scale)."""
    from mmengine.logging import print_log
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.',
                  logger='current')
        return
    if wrapper != 'OptimWrapper':
        raise ValueError('--amp needs optim_wrapper.type to be '
                         f"'OptimWrapper', got {wrapper!r}")
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def enable_auto_scale_lr(cfg) -> None:
    """Turn on ``auto_scale_lr`` (scale the lr by total batch / base)."""
    if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
        raise RuntimeError('--auto-scale-lr needs auto_scale_lr.'
                           'base_batch_size in the config')
    cfg.auto_scale_lr.enable = True


def set_resume(cfg, resume: Optional[str]) -> None:
    """mmdet-style ``--resume``: 'auto' resumes from the latest checkpoint of
    the work dir, a path resumes from that checkpoint."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume


def enable_visualization(cfg,
                         show: bool = False,
                         show_dir: Optional[str] = None,
                         wait_time: float = 2) -> None:
    """Make the task's visualisation hook draw test results."""
    if not (show or show_dir):
        return
    hook = cfg.default_hooks.get('visualization', None)
    if hook is None:
        raise RuntimeError('--show / --show-dir need '
                           'default_hooks.visualization in the config')
    hook['draw'] = True
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if show_dir:
        if scope_of(cfg) == 'mmdet':
            hook['test_out_dir'] = show_dir
        else:
            cfg.visualizer['save_dir'] = show_dir


def set_output(cfg, out: Optional[str]) -> None:
    """``--out``: mmdet dumps the raw predictions to a .pkl file, mmseg
    writes the predicted label maps as PNGs to a directory."""
    if out is None:
        return
    if scope_of(cfg) == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl file for detection')
        dump = dict(type='DumpDetResults', out_file_path=out)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (list(evaluator) + [dump] if isinstance(
            evaluator, (list, tuple)) else [evaluator, dump])
    else:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True


def enable_tta(cfg) -> None:
    """Wrap the model in the task's TTA model and test with
    ``tta_pipeline`` (for detection, default to flip TTA if the config
    has none)."""
    if scope_of(cfg) == 'mmdet':
        if 'tta_model' not in cfg:
            warnings.warn('no tta_model in the config: using DetTTAModel')
            cfg.tta_model = dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5),
                    max_per_img=100))
        if 'tta_pipeline' not in cfg:
            warnings.warn('no tta_pipeline in the config: using flip TTA')
            data = cfg.test_dataloader.dataset
            while 'dataset' in data:
                data = data['dataset']
            pipeline = deepcopy(data.pipeline)
            pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ], [
                    dict(
                        type='PackDetInputs',
                        meta_keys=('img_id', 'img_path', 'ori_shape',
                                   'img_shape', 'scale_factor', 'flip',
                                   'flip_direction'))
                ]])
            cfg.tta_pipeline = pipeline
    elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise RuntimeError('--tta needs tta_model and tta_pipeline in the '
                           'config')
    cfg.model = dict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_runner(cfg):
    """``Runner.from_cfg``, or the config's own ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
