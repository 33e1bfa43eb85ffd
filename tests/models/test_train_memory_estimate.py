"""The counting behind ``benchmarks/estimate_train_memory.py``: the bytes
autograd saves, counted on FakeTensors, equal the count on real tensors, and
activation checkpointing keeps the blocks' inputs instead of their insides."""
import importlib.util

from tests.helpers import REPO_ROOT

SCRIPT = REPO_ROOT / 'benchmarks' / 'estimate_train_memory.py'
TINY_CB_H = dict(type='CBInternImage', arch='h', channels=16, depths=[1, 1, 2, 1],
                 groups=[1, 2, 4, 8], level2_post_norm_block_ids=[1], drop_path_rate=0.,
                 core_op='DCNv3_pytorch')


def estimate():
    spec = importlib.util.spec_from_file_location('estimate_train_memory', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fake_count_equals_real_count():
    import projects.internimage  # noqa: F401  (registers CBInternImage in mmdet)
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    est = estimate()
    for with_cp in (True, False):
        cfg = dict(TINY_CB_H, with_cp=with_cp)
        real = est.backbone_activations(cfg, 96, 128, fake=False)
        fake = est.backbone_activations(cfg, 96, 128, fake=True)
        assert real == fake > 0, (with_cp, real, fake)


def test_checkpointing_keeps_the_block_inputs():
    """With checkpointing, each block keeps its input (N, H, W, C), not what
    it computes inside (the stems, downsampling layers and connections
    outside the blocks keep theirs)."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    est = estimate()
    with_cp = est.backbone_activations(dict(TINY_CB_H, with_cp=True), 128, 128)
    without = est.backbone_activations(dict(TINY_CB_H, with_cp=False), 128, 128)
    assert without > 3 * with_cp
    # the block inputs alone: 2 backbones x depths x (32/2**i)^2 x 16*2**i x 4 bytes
    inputs = 2 * sum(d * (32 // 2**i)**2 * 16 * 2**i * 4 for i, d in enumerate([1, 1, 2, 1]))
    assert inputs < with_cp
    saved, block_input = est.block_recompute(dict(TINY_CB_H, with_cp=True), 128, 128)
    assert block_input == 32 * 32 * 16 * 4 and saved > 4 * block_input

