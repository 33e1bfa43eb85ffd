"""Test (evaluate) a detector or a segmentor checkpoint.

Chosen by the config's default_scope; same arguments as mmdet's / mmseg's
``tools/test.py``. ``--out`` is a .pkl of raw predictions for detection and
a directory of predicted label maps for segmentation. The metrics are logged
and written to ``<work_dir>/<timestamp>/<timestamp>.json``.
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
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save the evaluation metrics and logs')
    parser.add_argument(
        '--out',
        help='detection: dump predictions to this .pkl file; segmentation: '
        'save predicted label maps in this directory')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory where painted images will be saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
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
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation (tta_model and tta_pipeline of the '
        'config; not for instance segmentation, which mmdet cannot merge)')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='test under autocast: float16 on a GPU, bfloat16 on the CPU')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    config_loader.set_local_rank(args.local_rank)
    from runner_builder import build_runner, close_runner

    cfg = config_loader.load_config(args.config, args.cfg_options,
                                    args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    runner_options.enable_visualization(cfg, args.show, args.show_dir,
                                        args.wait_time)
    if args.tta:
        runner_options.enable_tta(cfg)
    if args.amp:
        runner_options.enable_test_amp(cfg)
    runner_options.set_output(cfg, args.out)
    runner = build_runner(cfg)
    metrics = runner.test()
    close_runner()
    return metrics


if __name__ == '__main__':
    main()
