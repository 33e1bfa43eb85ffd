"""ONNX export of the DCNv3 op (ops_dcnv3/onnx.py).

The portable form runs in onnxruntime (CPU) and matches the compiled op
within 1e-4 (max abs error, float32, outputs of order 1) on several
geometries, with points far outside the image; the plugin form has one
``mmdeploy::TRTDCNv3`` node per DCNv3 layer, with the layer's attributes.
All cases of a form go through one export (one model, one output per case)
to keep the exporter's fixed cost out of the loop.
"""
import warnings
from typing import List, Tuple

import pytest
import torch

from ops_dcnv3.testing import compiled_op
from tests.helpers import requires_compiled

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
dcnv3_onnx = pytest.importorskip('ops_dcnv3.onnx')

from ops_dcnv3.functions import dcnv3_core_pytorch  # noqa: E402
from ops_dcnv3.modules import DCNv3, DCNv3_pytorch  # noqa: E402

TOLERANCE = 1e-4

#: (N, H, W, G, D, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
#:  dilation_h, dilation_w, offset_scale)
CASES = [
    (2, 7, 9, 2, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1.0),
    (1, 10, 11, 3, 5, 5, 5, 2, 2, 2, 2, 2, 2, 2.0),   # stride, dilation
    (2, 6, 8, 1, 8, 1, 1, 1, 1, 0, 0, 1, 1, 0.5),     # 1x1
    (1, 9, 7, 4, 2, 3, 5, 1, 2, 0, 2, 2, 1, 1.0),     # rectangular, mixed
    (1, 8, 8, 8, 1, 3, 3, 1, 1, 0, 0, 1, 1, 1.0),     # no padding, D = 1
]
#: Offsets (pixels) that put points far outside the image.
FAR = (1e3, -1e3, 4e5, -4e5, 64.5, -10.25)


def make_case(N, H, W, G, D, kh, kw, sh, sw, ph, pw, dh, dw, scale, seed
              ) -> Tuple[List[torch.Tensor], list]:
    """float32 input, offsets (spread of 3 px, every 7th set far out) and
    softmax'd mask; the op's scalar arguments."""
    gen = torch.Generator().manual_seed(seed)
    Ho = (H + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    Wo = (W + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    P = kh * kw
    x = torch.randn(N, H, W, G * D, generator=gen)
    offset = torch.randn(N, Ho, Wo, G * P * 2, generator=gen) * 3
    flat = offset.view(-1)
    far = torch.tensor(FAR)
    flat[::7] = far.repeat(flat[::7].numel() // len(far) + 1)[:flat[::7].numel()]
    mask = torch.randn(N, Ho, Wo, G, P, generator=gen).softmax(-1)
    return ([x, offset, mask.reshape(N, Ho, Wo, G * P)],
            [kh, kw, sh, sw, ph, pw, dh, dw, G, D, scale])


class OpCases(torch.nn.Module):
    """The registered op on each case's tensors: one output per case."""

    def __init__(self, args: List[list]) -> None:
        super().__init__()
        self.args = args

    def forward(self, *tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(
            torch.ops.ops_dcnv3.dcnv3(*tensors[3 * i:3 * i + 3], *a, 64)
            for i, a in enumerate(self.args))


def run_onnx(path, tensors):
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), tensors)}
    return [torch.from_numpy(o) for o in session.run(None, feed)]


@pytest.fixture(scope='module')
def portable(tmp_path_factory):
    """All CASES exported at once in the portable form: (path, inputs, args)."""
    cases = [make_case(*c, seed=i) for i, c in enumerate(CASES)]
    tensors = [t for ts, _ in cases for t in ts]
    args = [a for _, a in cases]
    path = tmp_path_factory.mktemp('onnx') / 'op_portable.onnx'
    dcnv3_onnx.export(OpCases(args).eval(), tuple(tensors), path)
    return path, cases


@requires_compiled
def test_portable_matches_compiled_op(portable):
    path, cases = portable
    outs = run_onnx(path, [t for ts, _ in cases for t in ts])
    assert len(outs) == len(cases)
    for (tensors, args), out in zip(cases, outs):
        ref = compiled_op(*tensors, *args)
        assert out.shape == ref.shape, args
        assert ref.abs().max() > 0.1, 'the case samples nothing'
        err = (out - ref).abs().max().item()
        assert err < TOLERANCE, f'case {args}: max abs error {err:.3g}'


def test_portable_matches_pytorch_path(portable):
    """The same check without the compiled op (it runs everywhere)."""
    path, cases = portable
    outs = run_onnx(path, [t for ts, _ in cases for t in ts])
    for (tensors, args), out in zip(cases, outs):
        ref = dcnv3_core_pytorch(*tensors, *args)
        err = (out - ref).abs().max().item()
        assert err < TOLERANCE, f'case {args}: max abs error {err:.3g}'


def test_portable_far_out_points_read_zeros(portable):
    """All points of an output pixel far outside: the output is exactly 0."""
    path, cases = portable
    feed = [t for ts, _ in cases for t in ts]
    feed[1] = torch.full_like(feed[1], 4e5)  # the first case's offsets
    out = run_onnx(path, feed)[0]
    assert out.numel() > 0 and torch.count_nonzero(out) == 0


def test_portable_graph_has_standard_ops_only(portable):
    path, _ = portable
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    domains = {n.domain for n in model.graph.node}
    assert domains <= {'', 'ai.onnx'}, domains
    assert max(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')) >= 16
    assert sum(n.op_type == 'GridSample' for n in model.graph.node) == len(CASES)


def test_portable_dynamic_sizes(tmp_path):
    """Exported with dynamic batch and spatial sizes, the graph runs at other
    sizes and still matches."""
    from torch.export import Dim
    (N, H, W, G, D, *geo), = [CASES[0]]
    tensors, args = make_case(N, H, W, G, D, *geo, seed=5)
    n, h, w = Dim('n', min=1, max=64), Dim('h', min=3, max=512), Dim('w', min=3, max=512)
    path = tmp_path / 'dynamic.onnx'
    dcnv3_onnx.export(OpCases([args]).eval(), tuple(tensors), path,
                      dynamic_shapes=(({0: n, 1: h, 2: w}, ) * 3, ))
    other, _ = make_case(3, H + 4, W + 7, G, D, *geo, seed=6)
    out, = run_onnx(path, other)
    ref = dcnv3_core_pytorch(*other, *args)
    assert out.shape == ref.shape == (3, H + 4, W + 7, G * D)
    assert (out - ref).abs().max().item() < TOLERANCE


# ------------------------------------------------------------------ plugin

#: DCNv3 layers of the plugin test: (module class, kwargs).
LAYERS = [
    (DCNv3, dict(channels=8, kernel_size=3, pad=1, group=2, offset_scale=1.0)),
    (DCNv3_pytorch, dict(channels=8, kernel_size=5, pad=4, dilation=2, group=4,
                         offset_scale=0.5)),
    (DCNv3, dict(channels=8, kernel_size=1, pad=0, group=1, offset_scale=2.0)),
]


def test_plugin_one_node_per_layer_with_attributes(tmp_path):
    torch.manual_seed(0)
    cores = (DCNv3.__dict__['core'], DCNv3_pytorch.__dict__['core'])
    layers = [cls(**kw) for cls, kw in LAYERS]
    model = torch.nn.Sequential(*layers).eval()
    path = tmp_path / 'plugin.onnx'
    dcnv3_onnx.export(model, (torch.randn(1, 6, 7, 8), ), path, plugin=True)
    graph = onnx.load(str(path)).graph
    nodes = [n for n in graph.node if n.domain == dcnv3_onnx.PLUGIN_DOMAIN]
    assert [n.op_type for n in nodes] == [dcnv3_onnx.PLUGIN_OP] * len(layers)
    assert not any(n.op_type == 'GridSample' for n in graph.node)
    for node, layer in zip(nodes, layers):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert set(attrs) == set(dcnv3_onnx.PLUGIN_ATTRIBUTES)
        k = layer.kernel_size
        assert attrs == dict(
            kernel_h=k, kernel_w=k, stride_h=1, stride_w=1, pad_h=layer.pad,
            pad_w=layer.pad, dilation_h=layer.dilation, dilation_w=layer.dilation,
            group=layer.group, group_channels=layer.group_channels,
            offset_scale=pytest.approx(layer.offset_scale),
            im2col_step=dcnv3_onnx.IM2COL_STEP)
        assert len(node.input) == 3 and len(node.output) == 1
    # the modules' own core op is back after the export
    assert (DCNv3.__dict__['core'], DCNv3_pytorch.__dict__['core']) == cores


def test_export_refuses_training_mode_and_missing_directory(tmp_path):
    layer = DCNv3_pytorch(channels=4, group=1)
    x = torch.randn(1, 5, 5, 4)
    with pytest.raises(ValueError, match='eval'):
        dcnv3_onnx.export(layer.train(), (x, ), tmp_path / 'a.onnx')
    with pytest.raises(FileNotFoundError, match='no_such_dir'):
        dcnv3_onnx.export(layer.eval(), (x, ), tmp_path / 'no_such_dir' / 'a.onnx')
    with pytest.raises(TypeError, match='tuple'):
        dcnv3_onnx.export(layer.eval(), x, tmp_path / 'a.onnx')


def test_torchscript_exporter_plugin_symbolic(tmp_path):
    """The route of mmdeploy 1.x (TorchScript exporter): one TRTDCNv3 node
    per layer of the compiled-op module, with its attributes."""
    dcnv3_onnx.register_torchscript_plugin_symbolic(16)
    layers = [DCNv3(channels=8, group=2),
              DCNv3(channels=8, kernel_size=5, pad=2, group=4, offset_scale=0.5)]
    path = tmp_path / 'legacy.onnx'
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated
        warnings.simplefilter('ignore')
        torch.onnx.export(torch.nn.Sequential(*layers).eval(),
                          (torch.randn(1, 6, 7, 8), ), str(path), dynamo=False,
                          opset_version=16)
    nodes = [n for n in onnx.load(str(path)).graph.node
             if n.domain == dcnv3_onnx.PLUGIN_DOMAIN]
    assert [n.op_type for n in nodes] == [dcnv3_onnx.PLUGIN_OP] * 2
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
             for n in nodes]
    assert [(a['kernel_h'], a['group'], a['group_channels']) for a in attrs] == [
        (3, 2, 4), (5, 4, 2)]
    assert attrs[1]['offset_scale'] == pytest.approx(0.5)
    assert set(attrs[0]) == set(dcnv3_onnx.PLUGIN_ATTRIBUTES)
