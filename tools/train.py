"""Train a detector or a segmentor (chosen by the config's default_scope).

Same arguments as mmdet's / mmseg's ``tools/train.py``; on machines without
CUDA, ``--launcher pytorch`` trains with gloo on CPU processes.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import config_loader  # noqa: E402
import runner_options  # noqa: E402

config_loader.add_repo_root_to_path()


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision: float16 with a dynamic loss scale '
        'on a GPU, bfloat16 autocast on the CPU')
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
    config_loader.set_local_rank(args.local_rank)
    from runner_builder import build_runner, close_runner

    cfg = config_loader.load_config(args.config, args.cfg_options,
                                    args.work_dir, args.launcher)
    if args.amp:
        runner_options.enable_amp(cfg)
    if args.auto_scale_lr:
        runner_options.enable_auto_scale_lr(cfg)
    runner_options.set_resume(cfg, args.resume)
    runner = build_runner(cfg)
    runner.train()
    close_runner()


if __name__ == '__main__':
    main()
