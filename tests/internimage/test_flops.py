"""mmengine's complexity counter counts the registered DCNv3 operator as
``tools/get_flops.py`` does (5 * n * k * c per layer)."""
import pytest
import torch

from tests.helpers import TINY, requires_compiled

pytestmark = requires_compiled


def _tiny_backbone():
    from projects.internimage import InternImage
    torch.manual_seed(0)
    return InternImage(**dict(TINY, core_op='DCNv3')).eval()


def _sampling_flops(model, x) -> int:
    """The DCNv3 term of our tools/get_flops.py for ``model(x)``."""
    from get_flops import count_dcnv3_sampling
    with count_dcnv3_sampling(model) as counts, torch.no_grad():
        model(x)
    return sum(counts)


def test_formula():
    from projects.internimage.flops import dcnv3_flops
    # n = 2 * 3 * 4 output pixels, k = 3 * 3 points, c = 8 channels.
    assert dcnv3_flops([2, 3, 4, 8], 3, 3) == 5 * 24 * 9 * 8
    with pytest.raises(ValueError, match='4-D'):
        dcnv3_flops([2, 3, 8], 3, 3)


def test_importing_the_project_registers_the_handle():
    import projects.internimage  # noqa: F401
    from mmengine.analysis import complexity_analysis as ca
    from projects.internimage.flops import DCNV3_OP_NAME, dcnv3_flop_jit
    assert ca._DEFAULT_SUPPORTED_FLOP_OPS[DCNV3_OP_NAME] is dcnv3_flop_jit


def test_counter_and_get_model_complexity_info_count_dcnv3_like_our_tool():
    """FlopAnalyzer and ``get_model_complexity_info`` (what mmdet's and
    mmseg's tools/analysis_tools/get_flops.py call) count each DCNv3 layer."""
    from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
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
