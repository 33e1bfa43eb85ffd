"""Test (evaluate) a detector or a segmentor checkpoint.

Chosen by the config's default_scope; same arguments as mmdet's / mmseg's
``tools/test.py``. ``--out`` is a .pkl of raw predictions for detection and
a directory of predicted label maps for segmentation. The metrics are logged
and written to ``<work_dir>/<timestamp>/<timestamp>.json``. The body is
``projects.internimage.apis`` (``config_for_testing``, ``run_testing``).
"""
import argparse

from mmengine.config import DictAction

from projects.internimage.apis import config_for_testing, run_testing, set_local_rank


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


def main() -> dict:
    args = parse_args()
    set_local_rank(args.local_rank)
    cfg = config_for_testing(args.config, args.checkpoint, work_dir=args.work_dir,
                             out=args.out, show=args.show, show_dir=args.show_dir,
                             wait_time=args.wait_time, cfg_options=args.cfg_options,
                             launcher=args.launcher, tta=args.tta, amp=args.amp)
    return run_testing(cfg)


if __name__ == '__main__':
    main()
