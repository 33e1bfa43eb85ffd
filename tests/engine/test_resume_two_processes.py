"""Exact resume with two processes (gloo on CPU): each rank restores its own
generator states (``diff_rank_seed=True``: the ranks' streams differ)."""
import os
import socket
import subprocess
import sys
import textwrap

from tests.helpers import REPO_ROOT

# Run from the repository root (``cwd``), where ``tests`` imports.
RANK = """
import torch.distributed as dist
dist.init_process_group('gloo', init_method='env://')
from tests.engine.test_resume import config, train, assert_same_optim
from mmengine.dist import all_gather_object

def cfg():
    c = config({work!r}, 'dist_' + str(dist.get_rank()), True, rng_hook=True)
    c.update(launcher='pytorch',
             cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                             device_ids=None)),
             randomness=dict(seed=0, deterministic=True, diff_rank_seed=True))
    return c

whole = train(dict(cfg(), work_dir={work!r} + '/whole'))
first = train(dict(cfg(), work_dir={work!r} + '/split'), stop_after=1)
second = train(dict(cfg(), work_dir={work!r} + '/split'), resume=True)
assert first['losses'] + second['losses'] == whole['losses'], (whole, first, second)
for key, value in whole['state'].items():
    assert (value == second['state'][key]).all(), key
assert_same_optim(whole['optim'], second['optim'])
losses = all_gather_object(whole['losses'])
assert losses[0] != losses[1]  # the ranks drew different numbers
print('rank', dist.get_rank(), 'identical', len(whole['losses']), 'losses')
dist.destroy_process_group()
"""


def test_two_ranks_resume_exactly(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    code = textwrap.dedent(RANK.format(work=str(tmp_path)))
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), OMP_NUM_THREADS='1')
        procs.append(subprocess.Popen([sys.executable, '-c', code], cwd=REPO_ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            proc.kill()
    for rank, (proc, out) in enumerate(zip(procs, outs)):
        assert proc.returncode == 0, out[-4000:]
        assert f'rank {rank} identical 4 losses' in out
