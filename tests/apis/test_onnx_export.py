"""The ONNX export (projects/internimage/apis/onnx_export.py, the body of
tools/deployment/export_onnx.py) on the demo configs (tiny widths, 64 px):
the exported segmentor's logits and detector's features match PyTorch in
onnxruntime."""
import pytest
import torch

from ops_dcnv3.testing import perturb_offsets
from tests.helpers import REPO_ROOT

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

DEMO = REPO_ROOT / 'configs' / 'demo'

#: A narrower decode head than the demo's (64 channels): a small file.
OPTIONS = {'model.decode_head.channels': 32, 'model.auxiliary_head.channels': 16}

#: max|onnxruntime - PyTorch| / max|PyTorch| for the whole float32 model.
TOLERANCE = 1e-4


@pytest.fixture(scope='module')
def tool():
    from projects.internimage.apis import onnx_export
    return onnx_export


@pytest.fixture(scope='module')
def segmentor_checkpoint(tool, tmp_path_factory):
    """Random demo UperNet weights, other than the tool's seeded ones, in a
    checkpoint file; the config and the model that wrote it."""
    cfg = tool.load_config(str(DEMO / 'upernet_internimage_demo.py'), OPTIONS)
    # offsets/masks are zero at initialisation: non-zero ones make the
    # exported GridSample interpolate between pixels, as in a trained model
    model = perturb_offsets(tool.build_model(cfg, 'none', seed=123), scale=0.05)
    path = tmp_path_factory.mktemp('ckpt') / 'upernet_demo.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path, cfg, model


def test_segmentor_end_to_end_matches_pytorch(tool, segmentor_checkpoint, tmp_path,
                                              capsys):
    import onnxruntime as ort
    ckpt, cfg, model = segmentor_checkpoint
    out = tmp_path / 'upernet.onnx'
    result = tool.export_onnx(str(DEMO / 'upernet_internimage_demo.py'), str(ckpt), str(out),
                              (64, 96), dynamic=True, cfg_options=OPTIONS)
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
    assert tool.export_onnx(str(DEMO / 'upernet_internimage_demo.py'), str(ckpt), str(out),
                            (64, 64), plugin=True, cfg_options=OPTIONS) == {}
    assert tool.count_plugin_nodes(str(out)) == sum(cfg.model.backbone.depths)


def test_detector_features_match_pytorch(tool, tmp_path, capsys):
    """A detector's backbone + neck: one output per FPN level (named from
    the forward that is the check's reference, no forward of its own)."""
    calls = []
    original = tool.DetectorFeatures.forward

    def counting(self, inputs):
        calls.append(tuple(inputs.shape))
        return original(self, inputs)

    tool.DetectorFeatures.forward = counting
    try:
        out = tmp_path / 'mask_rcnn_features.onnx'
        result = tool.export_onnx(str(DEMO / 'mask_rcnn_internimage_demo.py'), 'none', str(out),
                                  (64, 96), cfg_options={'model.neck.out_channels': 16})
    finally:
        tool.DetectorFeatures.forward = original
    assert result['max_rel'] < TOLERANCE, result
    import onnx
    names = [o.name for o in onnx.load(str(out), load_external_data=False).graph.output]
    assert names == [f'feat{i}' for i in range(5)]  # P2-P6
    # the reference forward and the exporter's trace: all on the input
    assert calls and set(calls) == {(1, 3, 64, 96)}, calls


def test_clear_errors(tool, tmp_path):
    config = str(DEMO / 'upernet_internimage_demo.py')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        tool.export_onnx(config, str(tmp_path / 'missing.pth'), str(tmp_path / 'a.onnx'),
                         (64, 64))
    with pytest.raises(FileNotFoundError, match='nope.py'):
        tool.export_onnx(str(tmp_path / 'nope.py'), 'none', str(tmp_path / 'a.onnx'), (64, 64))
    with pytest.raises(ValueError, match='--shape'):
        tool.export_onnx(config, 'none', str(tmp_path / 'a.onnx'), (16, 64))
