"""Exact resume through ``tools/dist_train.sh``: 2 epochs in one go against
1 epoch, interrupted, and ``--resume`` for the second, with GPUS processes.

Usage::

    python tests/engine/check_dist_resume.py CONFIG GPUS WORK_ROOT \\
        [--without-hook] [--cfg-options KEY=VALUE ...]

CONFIG must train at least 2 epochs with a checkpoint each epoch. The script
writes variant configs under WORK_ROOT (``RNGStateHook`` on, or off with
``--without-hook``; the interrupted run ends after epoch 1 through
``StopTrainingHook``), runs the three jobs, and prints the largest weight
difference between the two ``epoch_2.pth``, whether the optimizer states are
equal, and the per-iteration training losses (the message hub's). Exit
status 0 when weights, optimizer state and losses are identical.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
from typing import Any, List

#: The repository root: tools/dist_train.sh puts it on the workers' path,
#: where the variant configs' ``tests.engine.toy`` imports.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

IMPORTS = ['projects.internimage', 'projects.internimage.compat',
           'projects.internimage.engine', 'tests.engine.toy']


def write_variant(root: str, config: str, name: str, hooks: List[str]) -> str:
    path = osp.join(root, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{osp.abspath(config)!r}]\n'
                f'custom_imports = dict(imports={IMPORTS!r}, allow_failed_imports=False)\n'
                f'custom_hooks = [{", ".join(hooks)}]\n')
    return path


def dist_train(config: str, gpus: int, work_dir: str, options: List[str], resume: bool,
               port: int) -> None:
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, str(gpus),
           '--work-dir', work_dir]
    if resume:
        cmd.append('--resume')
    if options:
        cmd += ['--cfg-options'] + options
    env = dict(os.environ, PORT=str(port), PYTHON=sys.executable)
    with open(osp.join(osp.dirname(work_dir), osp.basename(work_dir) + '.log'), 'a') as log:
        subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True)


def max_diff(a: Any, b: Any) -> float:
    """Largest absolute difference between two nested tensor structures
    (inf where their structure or non-tensor values differ)."""
    import torch
    if isinstance(a, torch.Tensor):
        if a.shape != b.shape:
            return float('inf')
        if not a.is_floating_point():
            return 0.0 if torch.equal(a, b) else float('inf')
        return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return float('inf')
        return max([max_diff(a[k], b[k]) for k in a] or [0.0])
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return float('inf')
        return max([max_diff(x, y) for x, y in zip(a, b)] or [0.0])
    return 0.0 if a == b else float('inf')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('gpus', type=int)
    parser.add_argument('root')
    parser.add_argument('--without-hook', action='store_true')
    parser.add_argument('--port', type=int, default=29531)
    parser.add_argument('--cfg-options', nargs='+', default=[])
    args = parser.parse_args(argv)
    os.makedirs(args.root, exist_ok=True)
    rng = [] if args.without_hook else ["dict(type='RNGStateHook')"]
    whole_cfg = write_variant(args.root, args.config, 'whole', rng)
    first_cfg = write_variant(args.root, args.config, 'first',
                              rng + ["dict(type='StopTrainingHook', after=1)"])
    whole, split = osp.join(args.root, 'whole'), osp.join(args.root, 'split')
    dist_train(whole_cfg, args.gpus, whole, args.cfg_options, False, args.port)
    dist_train(first_cfg, args.gpus, split, args.cfg_options, False, args.port + 1)
    dist_train(whole_cfg, args.gpus, split, args.cfg_options, True, args.port + 2)

    from projects.internimage.checkpoint.reader import read_checkpoint
    a = read_checkpoint(osp.join(whole, 'epoch_2.pth'))
    b = read_checkpoint(osp.join(split, 'epoch_2.pth'))
    dw = max_diff(a['state_dict'], b['state_dict'])
    dopt = max_diff(a['optimizer'], b['optimizer'])
    la = list(a['message_hub']['log_scalars']['train/loss'].data[0])
    lb = list(b['message_hub']['log_scalars']['train/loss'].data[0])
    print(f'{"without" if args.without_hook else "with"} RNGStateHook, {args.gpus} processes:')
    print(f'  max |dW| (epoch_2.pth, whole vs 1 + resume 1): {dw:.3g}')
    print(f'  max |d optimizer state|: {dopt:.3g}')
    print(f'  losses whole:  {", ".join(f"{x:.6f}" for x in la)}')
    print(f'  losses split:  {", ".join(f"{x:.6f}" for x in lb)}')
    same = dw == 0 and dopt == 0 and la == lb
    print(f'  identical: {same}')
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
