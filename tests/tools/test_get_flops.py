"""tools/get_flops.py: standard counter + 5*n*k*c per DCNv3 layer, on small
inputs (the full-size figures are a slow check, see the docstring of
test_published_flops)."""
import os
import re
import subprocess
import sys

import pytest
from tests.helpers import REPO_ROOT

DEMO = REPO_ROOT / 'configs' / 'demo'


def dcnv3_sampling_flops(channels, depths, h, w) -> int:
    """5 * n * k * c summed over the blocks: stage i runs at stride 4 * 2^i
    (3x3 stride-2 convs with padding 1: ceil halvings) with C * 2^i
    channels."""
    total, (h, w) = 0, ((h + 1) // 2, (w + 1) // 2)
    for i, depth in enumerate(depths):
        h, w = (h + 1) // 2, (w + 1) // 2
        total += depth * 5 * h * w * 9 * channels * 2**i
    return total


@pytest.fixture
def load():
    from config_loader import load_config

    def _load(name: str):
        cfg = load_config(str(DEMO / name))
        cfg.model.backbone.init_cfg = None
        return cfg

    return _load


@pytest.mark.parametrize('name, shape', [
    ('mask_rcnn_internimage_demo.py', (64, 96)),
    ('upernet_internimage_demo.py', (64, 128)),
])
def test_counts(load, name, shape):
    from get_flops import complexity
    cfg = load(name)
    result = complexity(cfg, shape)
    bb = cfg.model.backbone
    assert result['dcnv3_flops'] == dcnv3_sampling_flops(
        bb.channels, bb.depths, *shape)
    assert result['flops'] == result['counter_flops'] + result['dcnv3_flops']
    assert result['counter_flops'] > 0


def test_counter_sees_dcnv3_projections_and_rpn(load):
    """Stubbing the DCNv3 core must not hide the layers around it (offset,
    mask, dw conv) nor, for two-stage detectors, the RPN head; the box
    head runs on 1000 proposals, the mask head on 100."""
    from get_flops import complexity
    cfg = load('mask_rcnn_internimage_demo.py')
    by_module = complexity(cfg, (64, 64))['by_module']
    c, g = cfg.model.backbone.channels, cfg.model.backbone.groups[0]
    dcn = 'model.backbone.levels.0.blocks.0.dcn.'
    pixels = 16 * 16  # stage 0 of a 64x64 input
    assert by_module[dcn + 'offset'] == pixels * c * g * 9 * 2
    assert by_module[dcn + 'mask'] == pixels * c * g * 9
    assert by_module[dcn + 'dw_conv.0'] == pixels * c * 9
    assert by_module[dcn + 'input_proj'] == pixels * c * c
    # RPN conv 3x3 256->256 on the P2..P6 maps of a 64x64 input
    assert by_module['model.rpn_head.rpn_conv'] == sum(
        s * s for s in (16, 8, 4, 2, 1)) * 256 * 256 * 9
    assert by_module['model.roi_head.bbox_head.shared_fcs.0'] == (
        1000 * 256 * 7 * 7 * 1024)
    assert by_module['model.roi_head.mask_head.convs.0'] == (
        100 * 14 * 14 * 256 * 256 * 9)


def test_cli(tmp_path):
    out = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'get_flops.py'),
        str(DEMO / 'upernet_internimage_demo.py'), '--shape', '64', '64'
    ],
                         cwd=tmp_path,
                         env=dict(os.environ, OMP_NUM_THREADS='1'),
                         stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    assert re.search(r'^Flops: \d+\.\dG$', out.stdout, re.M)
    assert re.search(r'^Params: \d+\.\dM$', out.stdout, re.M)
    assert 'Input shape: (3, 64, 64)' in out.stdout


@pytest.mark.skipif(
    not os.environ.get('RUN_SLOW'), reason='slow: set RUN_SLOW=1')
@pytest.mark.parametrize('name, shape, published', [
    ('coco/mask_rcnn_internimage_t_fpn_1x_coco.py', (800, 1280), 270),
    ('coco/mask_rcnn_internimage_s_fpn_1x_coco.py', (800, 1280), 340),
    ('coco/mask_rcnn_internimage_b_fpn_1x_coco.py', (800, 1280), 501),
    ('coco/cascade_internimage_l_fpn_1x_coco.py', (800, 1280), 1399),
    ('ade20k/upernet_internimage_t_512_160k_ade20k.py', (512, 2048), 944),
    # L and XL were published at their own test scale
    ('ade20k/upernet_internimage_l_640_160k_ade20k.py', (640, 2560), 2526),
])
def test_published_flops(name, shape, published):
    """The published FLOPs column, within 5% (10 s to a minute each on
    CPU: ``RUN_SLOW=1 pytest tests/tools/test_get_flops.py``)."""
    from config_loader import load_config
    from get_flops import complexity
    cfg = load_config(str(REPO_ROOT / 'configs' / name))
    cfg.model.backbone.init_cfg = None
    flops = complexity(cfg, shape)['flops']
    assert abs(flops / 1e9 - published) <= 0.05 * published
