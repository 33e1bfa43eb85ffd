"""The counting behind the training-memory estimate
(``projects/internimage/apis/train_memory.py``,
``benchmarks/estimate_train_memory.py``): the bytes autograd saves, counted
on FakeTensors, equal the count on real tensors, and activation
checkpointing keeps the blocks' inputs instead of their insides."""
import pytest

from projects.internimage.apis.train_memory import (backbone_activations, block_recompute,
                                                    estimate_train_memory)

TINY_CB_H = dict(type='CBInternImage', arch='h', channels=16, depths=[1, 1, 2, 1],
                 groups=[1, 2, 4, 8], level2_post_norm_block_ids=[1], drop_path_rate=0.,
                 core_op='DCNv3_pytorch')


@pytest.fixture(autouse=True)
def mmdet_scope():
    import projects.internimage  # noqa: F401  (registers the models)
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')


def test_fake_count_equals_real_count():
    for with_cp in (True, False):
        cfg = dict(TINY_CB_H, with_cp=with_cp)
        real = backbone_activations(cfg, 96, 128, fake=False)
        fake = backbone_activations(cfg, 96, 128, fake=True)
        assert real == fake > 0, (with_cp, real, fake)


def test_checkpointing_keeps_the_block_inputs():
    """With checkpointing, each block keeps its input (N, H, W, C), not what
    it computes inside (the stems, downsampling layers and connections
    outside the blocks keep theirs)."""
    with_cp = backbone_activations(dict(TINY_CB_H, with_cp=True), 128, 128)
    without = backbone_activations(dict(TINY_CB_H, with_cp=False), 128, 128)
    assert without > 3 * with_cp
    # the block inputs alone: 2 backbones x depths x (32/2**i)^2 x 16*2**i x 4 bytes
    inputs = 2 * sum(d * (32 // 2**i)**2 * 16 * 2**i * 4 for i, d in enumerate([1, 1, 2, 1]))
    assert inputs < with_cp
    saved, block_input = block_recompute(dict(TINY_CB_H, with_cp=True), 128, 128)
    assert block_input == 32 * 32 * 16 * 4 and saved > 4 * block_input


@pytest.mark.parametrize('shape, fit_sizes, match', [
    ((1824, ), (320, 384), r'shape must be \(H, W\)'),
    ((1824, 2016), (320, 320), 'two sizes at least'),
])
def test_bad_arguments_are_named(shape, fit_sizes, match):
    with pytest.raises(ValueError, match=match):
        estimate_train_memory(None, shape, fit_sizes=fit_sizes)
