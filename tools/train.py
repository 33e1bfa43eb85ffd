"""Train a detector or a segmentor (chosen by the config's default_scope).

Same arguments as mmdet's / mmseg's ``tools/train.py``; on machines without
CUDA, ``--launcher pytorch`` trains with gloo on CPU processes. The body is
``projects.internimage.apis`` (``config_for_training``, ``run_training``).
"""
import argparse

from mmengine.config import DictAction

from projects.internimage.apis import config_for_training, run_training, set_local_rank


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    set_local_rank(args.local_rank)
    cfg = config_for_training(args.config, work_dir=args.work_dir,
                              cfg_options=args.cfg_options, launcher=args.launcher,
                              amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                              resume=args.resume)
    run_training(cfg)


if __name__ == '__main__':
    main()
