"""FLOP counting (projects/internimage/apis/flops.py): the DCNv3 term
(5 * n * k * c per layer), mmengine's complexity counter with the DCNv3
handle that ``compat.apply()`` registers, and whole models the way the
published tables count them (the standard counter plus the DCNv3 term), on
small inputs (the full-size figures are a slow check, see the docstring of
test_published_flops)."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.helpers import REPO_ROOT, TINY, requires_compiled

DEMO = REPO_ROOT / 'configs' / 'demo'


def _tiny_backbone():
    from projects.internimage import InternImage
    torch.manual_seed(0)
    return InternImage(**dict(TINY, core_op='DCNv3')).eval()


def _sampling_flops(model, x) -> int:
    """The DCNv3 term of our FLOP count for ``model(x)``."""
    from projects.internimage.apis.flops import count_dcnv3_sampling
    with count_dcnv3_sampling(model) as counts, torch.no_grad():
        model(x)
    return sum(counts)


def test_formula():
    from projects.internimage.apis.flops import dcnv3_flops
    # n = 2 * 3 * 4 output pixels, k = 3 * 3 points, c = 8 channels.
    assert dcnv3_flops([2, 3, 4, 8], 3, 3) == 5 * 24 * 9 * 8
    with pytest.raises(ValueError, match='4-D'):
        dcnv3_flops([2, 3, 8], 3, 3)


def test_compat_registers_the_handle_and_importing_the_package_does_not():
    """The handle goes into a private table of mmengine: ``compat.apply()``
    (a config's custom_imports, the tools) writes it, the package import not."""
    code = textwrap.dedent("""
        from mmengine.analysis import complexity_analysis as ca
        import projects.internimage
        print('package', 'ops_dcnv3::dcnv3' in ca._DEFAULT_SUPPORTED_FLOP_OPS)
        from projects.internimage import compat
        from projects.internimage.apis.flops import dcnv3_activation_jit, dcnv3_flop_jit
        print('compat', ca._DEFAULT_SUPPORTED_FLOP_OPS['ops_dcnv3::dcnv3'] is dcnv3_flop_jit,
              ca._DEFAULT_SUPPORTED_ACT_OPS['ops_dcnv3::dcnv3'] is dcnv3_activation_jit)
        """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['package', 'False', 'compat', 'True', 'True']


@requires_compiled
def test_counter_and_get_model_complexity_info_count_dcnv3_like_our_tool():
    """FlopAnalyzer and ``get_model_complexity_info`` (what mmdet's and
    mmseg's tools/analysis_tools/get_flops.py call) count each DCNv3 layer."""
    from mmengine.analysis import FlopAnalyzer, get_model_complexity_info

    from projects.internimage import compat
    compat.apply()
    model = _tiny_backbone()
    x = torch.randn(1, 3, 64, 96)
    analyzer = FlopAnalyzer(model, (x, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    by_operator = analyzer.by_operator()
    assert 'ops_dcnv3::dcnv3' not in analyzer.unsupported_ops()
    expected = _sampling_flops(model, x)
    assert expected > 0
    assert by_operator['dcnv3'] == expected
    # Stage 1 (stride 4, 16 channels, one block): 5 * (16 * 24) * 9 * 16.
    assert analyzer.by_module_and_operator()['levels.0.blocks.0.dcn']['dcnv3'] == \
        5 * 16 * 24 * 9 * 16
    info = get_model_complexity_info(model, inputs=(x, ), show_table=False,
                                     show_arch=False)
    assert info['flops'] == analyzer.total()


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
    from projects.internimage.apis import load_config

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
    from projects.internimage.apis.flops import complexity
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
    from projects.internimage.apis.flops import NUM_DUMMY_PROPOSALS, complexity
    cfg = load('mask_rcnn_internimage_demo.py')
    by_module = complexity(cfg, (64, 64))['by_module']
    c, g = cfg.model.backbone.channels, cfg.model.backbone.groups[0]
    dcn = 'model.backbone.levels.0.blocks.0.dcn.'
    pixels = 16 * 16  # stage 0 of a 64x64 input
    assert by_module[dcn + 'offset'] == pixels * c * g * 9 * 2
    assert by_module[dcn + 'mask'] == pixels * c * g * 9
    assert by_module[dcn + 'dw_conv.0'] == pixels * c * 9
    assert by_module[dcn + 'input_proj'] == pixels * c * c
    # RPN conv 3x3 on the P2..P6 maps of a 64x64 input (the demo's neck
    # width: 64 channels; box head: fully connected layers of 256)
    neck, fc = cfg.model.neck.out_channels, cfg.model.roi_head.bbox_head.fc_out_channels
    assert (neck, fc) == (64, 256)
    assert by_module['model.rpn_head.rpn_conv'] == sum(
        s * s for s in (16, 8, 4, 2, 1)) * neck * neck * 9
    assert by_module['model.roi_head.bbox_head.shared_fcs.0'] == (
        NUM_DUMMY_PROPOSALS * neck * 7 * 7 * fc)
    assert by_module['model.roi_head.mask_head.convs.0'] == (
        100 * 14 * 14 * neck * neck * 9)


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
    CPU: ``RUN_SLOW=1 pytest tests/apis/test_flops.py``)."""
    from projects.internimage.apis import load_config
    from projects.internimage.apis.flops import complexity
    cfg = load_config(str(REPO_ROOT / 'configs' / name))
    cfg.model.backbone.init_cfg = None
    flops = complexity(cfg, shape)['flops']
    assert abs(flops / 1e9 - published) <= 0.05 * published
