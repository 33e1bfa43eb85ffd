"""The CPU (gloo) distributed set-up (projects/internimage/apis/distributed.py),
in one process, and the CPU DDP wrapper of projects.internimage.engine."""
import socket

import pytest
import torch
from torch import nn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def single_rank_env(monkeypatch):
    for key, value in dict(
            RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only path')
def test_setup_distributed_cpu(single_rank_env):
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.registry import MODEL_WRAPPERS
    from projects.internimage.apis.distributed import setup_distributed, teardown_distributed

    cfg = Config(dict(launcher='pytorch', env_cfg=dict(
        dist_cfg=dict(backend='nccl'))))
    setup_distributed(cfg)
    try:
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.type == 'CPUDistributedDataParallel'

        # what Runner.wrap_model does with it: device_ids are ignored and
        # SyncBN becomes BN
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4))
        wrapper = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg,
            default_args=dict(module=model, device_ids=[0]))
        assert wrapper.device_ids is None
        assert not any(
            isinstance(m, nn.SyncBatchNorm) for m in wrapper.modules())
        wrapper.module(torch.randn(2, 3, 8, 8)).sum().backward()
    finally:
        teardown_distributed()
    assert not dist.is_initialized()


def test_cpu_ddp_wrapper_registered_by_the_package():
    """Importing projects.internimage registers the wrapper in mmengine's
    MODEL_WRAPPERS, which the mmdet and mmseg registries see."""
    import projects.internimage as pkg
    from mmdet.registry import MODEL_WRAPPERS as DET_WRAPPERS
    from mmengine.registry import MODEL_WRAPPERS
    from mmseg.registry import MODEL_WRAPPERS as SEG_WRAPPERS
    from projects.internimage.engine.cpu_ddp import CPUDistributedDataParallel
    assert pkg.CPUDistributedDataParallel is CPUDistributedDataParallel
    assert MODEL_WRAPPERS.get(
        'CPUDistributedDataParallel') is CPUDistributedDataParallel
    for registry in (DET_WRAPPERS, SEG_WRAPPERS):
        assert registry.get(
            'CPUDistributedDataParallel') is CPUDistributedDataParallel


def test_no_launcher_is_untouched():
    from mmengine.config import Config
    from projects.internimage.apis.distributed import setup_distributed
    cfg = Config(dict(launcher='none'))
    setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg and 'env_cfg' not in cfg


def test_resume_option():
    """mmdet-style --resume: none, 'auto' (no value: the latest checkpoint of
    the work dir) or a checkpoint."""
    from mmengine.config import Config

    from projects.internimage.apis.runner_options import set_resume
    for resume, expected in ((None, (False, None)), ('auto', (True, None)),
                             ('x.pth', (True, 'x.pth'))):
        cfg = Config(dict(resume=False, load_from=None))
        set_resume(cfg, resume)
        assert (cfg.resume, cfg.load_from) == expected


def test_slurm_rank_env(monkeypatch):
    """CPU slurm runs take ranks from SLURM_* (overriding a LOCAL_RANK the
    tools default to 0)."""
    import os
    from projects.internimage.apis.distributed import _export_rank_env
    for key, value in dict(
            SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
            LOCAL_RANK='0', MASTER_ADDR='node0', PORT='29999').items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv('MASTER_PORT', raising=False)
    for key in ('RANK', 'WORLD_SIZE'):  # restored after the test
        monkeypatch.delenv(key, raising=False)
    _export_rank_env('slurm')
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK'], os.environ['MASTER_PORT']) == (
                '3', '4', '1', '29999')
