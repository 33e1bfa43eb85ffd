"""tools/deployment/export_onnx.py on the demo configs (tiny widths, 64 px):
the exported segmentor's logits match PyTorch in onnxruntime."""
import sys

import pytest
import torch

from tests.helpers import REPO_ROOT, perturb_dcn_offsets

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

DEMO = REPO_ROOT / 'configs' / 'demo'
sys.path.insert(0, str(REPO_ROOT / 'tools' / 'deployment'))

#: A narrower decode head than the demo's (512 channels): a small file.
OPTIONS = {'model.decode_head.channels': 32, 'model.auxiliary_head.channels': 16}
CFG_OPTIONS = ['--cfg-options'] + [f'{k}={v}' for k, v in OPTIONS.items()]

#: max|onnxruntime - PyTorch| / max|PyTorch| for the whole float32 model.
TOLERANCE = 1e-4


@pytest.fixture(scope='module')
def tool():
    import export_onnx
    return export_onnx


@pytest.fixture(scope='module')
def segmentor_checkpoint(tool, tmp_path_factory):
    """Random demo UperNet weights, other than the tool's seeded ones, in a
    checkpoint file; the config and the model that wrote it."""
    cfg = tool.load_config(str(DEMO / 'upernet_internimage_demo.py'), OPTIONS)
    # offsets/masks are zero at initialisation: non-zero ones make the
    # exported GridSample interpolate between pixels, as in a trained model
    model = perturb_dcn_offsets(tool.build_model(cfg, 'none', seed=123), scale=0.05)
    path = tmp_path_factory.mktemp('ckpt') / 'upernet_demo.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path, cfg, model


def test_segmentor_end_to_end_matches_pytorch(tool, segmentor_checkpoint, tmp_path,
                                              capsys):
    import onnxruntime as ort
    ckpt, cfg, model = segmentor_checkpoint
    out = tmp_path / 'upernet.onnx'
    result = tool.main([str(DEMO / 'upernet_internimage_demo.py'), str(ckpt),
                        '--shape', '64', '96', '--dynamic', str(out)] + CFG_OPTIONS)
    assert result['max_rel'] < TOLERANCE, result
    printed = capsys.readouterr().out
    assert 'largest difference' in printed and 'dynamic' in printed
    # independent of the tool's own check, at a third size: the file gives the
    # logits of the checkpoint's model (not of freshly initialised weights)
    x = tool.make_input(cfg, (128, 64), seed=7)
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    got = torch.from_numpy(session.run(None, {'input': x.numpy()})[0])
    with torch.no_grad():
        ref = tool.SegmentorLogits(model.eval())(x)
    assert got.shape == (1, 5, 128, 64)
    assert (got - ref).abs().max() <= TOLERANCE * ref.abs().max()


@pytest.mark.parametrize('size', [(1, 1), 2, (3, 6), (6, 3)])
@pytest.mark.parametrize('hw', [(2, 3), (7, 5), (12, 12), (13, 31)])
def test_dynamic_adaptive_pooling_equals_adaptive_avg_pool(tool, size, hw):
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    ref = torch.nn.AdaptiveAvgPool2d(size)(x)
    got = tool.DynamicAdaptiveAvgPool2d(size)(x)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_dynamic_adaptive_pooling_swaps_and_restores(tool):
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(3)))
    with tool.dynamic_adaptive_pooling(model) as n:
        assert n == 1
        assert type(model[0]) is torch.nn.AdaptiveAvgPool2d  # global: kept
        assert isinstance(model[1][0], tool.DynamicAdaptiveAvgPool2d)
    assert type(model[1][0]) is torch.nn.AdaptiveAvgPool2d


def test_plugin_form_has_one_node_per_dcnv3_layer(tool, segmentor_checkpoint, tmp_path):
    ckpt, cfg, _ = segmentor_checkpoint
    out = tmp_path / 'upernet_plugin.onnx'
    tool.main([str(DEMO / 'upernet_internimage_demo.py'), str(ckpt), '--shape',
               '64', '64', '--plugin', str(out)] + CFG_OPTIONS)
    assert tool.count_plugin_nodes(str(out)) == sum(cfg.model.backbone.depths)


def test_clear_errors(tool, tmp_path):
    config = str(DEMO / 'upernet_internimage_demo.py')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        tool.main([config, str(tmp_path / 'missing.pth'), '--shape', '64', '64',
                   str(tmp_path / 'a.onnx')])
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.main([str(tmp_path / 'nope.py'), 'none', '--shape', '64', '64',
                   str(tmp_path / 'a.onnx')])
    with pytest.raises(ValueError, match='--shape'):
        tool.main([config, 'none', '--shape', '16', '64', str(tmp_path / 'a.onnx')])
