"""Train a detector or a segmentor (chosen by the config's default_scope).

Same arguments as mmdet's / mmseg's ``tools/train.py``; on machines without
CUDA, ``--launcher pytorch`` trains with gloo on CPU processes.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import _common  # noqa: E402

_common.add_repo_root_to_path()


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the total batch size / auto_scale_lr.'
        'base_batch_size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    _common.set_local_rank(args.local_rank)
    from _launch import setup_distributed, teardown_distributed

    cfg = _common.load_config(args.config, args.cfg_options, args.work_dir,
                              args.launcher)
    if args.amp:
        _common.enable_amp(cfg)
    if args.auto_scale_lr:
        _common.enable_auto_scale_lr(cfg)
    _common.set_resume(cfg, args.resume)
    setup_distributed(cfg)
    runner = _common.build_runner(cfg)
    runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()
