"""ONNX export of DCNv3: translations of ``torch.ops.ops_dcnv3.dcnv3``.

Two forms of the op in an exported graph:

- **portable** (the default): standard ONNX ops only (opset >= 16; the
  export uses :data:`OPSET`), with the bilinear sampling done by
  ``GridSample`` (``align_corners=0``, ``padding_mode='zeros'``). For finite
  offsets and masks it computes what the op computes: a sampling point
  outside the image reads zeros, however far out; a point near the border
  mixes the pixels inside with zeros. (Unlike the op it does not contain
  non-finite values: an infinite mask on a point outside the image gives NaN
  there, and NaN/inf offsets are left to the runtime's GridSample.) Any ONNX
  runtime runs it (onnxruntime, OpenVINO) without a plugin.
- **plugin**: one ``mmdeploy::TRTDCNv3`` node per DCNv3 call, with the
  attributes of the reference deployment (``kernel_h``, ``kernel_w``,
  ``stride_h``, ``stride_w``, ``pad_h``, ``pad_w``, ``dilation_h``,
  ``dilation_w``, ``group``, ``group_channels``, ``offset_scale`` (float),
  ``im2col_step``), for TensorRT with the DCNv3 plugin.

Exporter: the torch.export-based exporter (``torch.onnx.export(...,
dynamo=True)``, torch's default) with a ``custom_translation_table`` for the
registered op. The op is one opaque node of the exported program (its fake
implementation gives the output shape, so no kernel runs during export and
the compiled extension is not even needed), and the translation turns it
into one of the two forms. The TorchScript exporter (``dynamo=False``) is
deprecated and sees the op only through a tracer; its symbolic functions
would be a second, parallel implementation of each form.

:func:`export` exports any model whose DCNv3 modules (:class:`ops_dcnv3.DCNv3`
or :class:`ops_dcnv3.DCNv3_pytorch`) run through the registered op while it
exports (:func:`dcnv3_modules_on_registered_op`), so the two core ops give
the same graph.

Tensors are channels-last, as for the op: ``input`` (N, H, W, G*D),
``offset`` (N, Ho, Wo, G*P*2) with (x, y) pairs, ``mask`` (N, Ho, Wo, G*P),
P = kernel_h * kernel_w, point ``p = i * kernel_h + j`` at column ``i`` and
row ``j`` of the kernel.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple, Union

import torch

# im2col_step written into the plugin nodes: the modules' value.
from .modules.dcnv3 import IM2COL_STEP

#: Opset of the exported graphs (GridSample needs >= 16; 18 is the lowest the
#: torch.export-based exporter writes without a version conversion).
OPSET = 18
#: Domain, op type and domain version of the plugin node.
PLUGIN_DOMAIN = 'mmdeploy'
PLUGIN_OP = 'TRTDCNv3'
PLUGIN_DOMAIN_VERSION = 1
#: Attribute names of the plugin node, in the op's argument order
#: (``offset_scale`` is a float attribute, the others ints).
PLUGIN_ATTRIBUTES = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h',
                     'pad_w', 'dilation_h', 'dilation_w', 'group',
                     'group_channels', 'offset_scale', 'im2col_step')
#: Weights above this size are saved next to the ONNX file, not inside it.
EXTERNAL_DATA_BYTES = 1800 * 2**20


def _registered_op():
    """``torch.ops.ops_dcnv3.dcnv3.default``, registered by importing
    ops_dcnv3; a clear error when this build does not register it."""
    import ops_dcnv3  # noqa: F401  (registers the op)
    namespace = getattr(torch.ops, 'ops_dcnv3')
    if not hasattr(namespace, 'dcnv3'):
        raise RuntimeError(
            'ops_dcnv3: the operator torch.ops.ops_dcnv3.dcnv3 is not '
            'registered, so DCNv3 cannot be exported to ONNX')
    return namespace.dcnv3.default


# ------------------------------------------------------------ translations


def _int_attrs(**values: Any) -> Dict[str, int]:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f'DCNv3 ONNX export: {name} must be a constant int, '
                            f'got {value!r}')
    return values


def dcnv3_portable(input, offset, mask, kernel_h: int, kernel_w: int,
                   stride_h: int, stride_w: int, pad_h: int, pad_w: int,
                   dilation_h: int, dilation_w: int, group: int,
                   group_channels: int, offset_scale: float,
                   im2col_step: int = IM2COL_STEP):
    """Portable translation of ``ops_dcnv3::dcnv3``: standard ONNX ops.

    Batch and spatial sizes stay symbolic (read with ``Shape``), so a graph
    exported with dynamic axes runs at any size. The sampling runs in the
    input's dtype (float32 in ``GridSample`` for the usual float32 graph).

    Args:
        input: (N, H, W, group * group_channels) ONNX value.
        offset: (N, Ho, Wo, group * kernel_h * kernel_w * 2) ONNX value.
        mask: (N, Ho, Wo, group * kernel_h * kernel_w) ONNX value.
        kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
            dilation_w, group, group_channels: the op's constant ints.
        offset_scale: the op's constant float.
        im2col_step: unused (a memory knob of the CUDA kernel).
    """
    from onnxscript import opset18 as op
    _int_attrs(kernel_h=kernel_h, kernel_w=kernel_w, stride_h=stride_h,
               stride_w=stride_w, pad_h=pad_h, pad_w=pad_w,
               dilation_h=dilation_h, dilation_w=dilation_w, group=group,
               group_channels=group_channels)
    G, D, P = group, group_channels, kernel_h * kernel_w
    half_h = (dilation_h * (kernel_h - 1)) // 2
    half_w = (dilation_w * (kernel_w - 1)) // 2
    scale = float(offset_scale)

    def const(values: Sequence[float]):
        # a 1-D constant in the input's dtype
        return op.CastLike(op.Constant(value_floats=[float(v) for v in values]), input)

    def ints(values: Sequence[int]):
        return op.Constant(value_ints=[int(v) for v in values])

    in_shape = op.Shape(input)                      # [N, H, W, C]
    out_shape = op.Shape(offset)                    # [N, Ho, Wo, G*P*2]
    H = op.CastLike(op.Slice(in_shape, ints([1]), ints([2])), input)
    W = op.CastLike(op.Slice(in_shape, ints([2]), ints([3])), input)
    Ho = op.Slice(out_shape, ints([1]), ints([2]))  # int64 [1]
    Wo = op.Slice(out_shape, ints([2]), ints([3]))

    # Centre of each output pixel's kernel in input pixels: (Ho,) and (Wo,).
    zero = op.Constant(value_int=0)
    one = op.Constant(value_int=1)
    rows = op.CastLike(op.Range(zero, op.Squeeze(Ho, ints([0])), one), input)
    cols = op.CastLike(op.Range(zero, op.Squeeze(Wo, ints([0])), one), input)
    cy = op.Add(op.Mul(rows, const([stride_h])), const([half_h - pad_h]))
    cx = op.Add(op.Mul(cols, const([stride_w])), const([half_w - pad_w]))

    # Kernel grid of point p = i * kernel_h + j: x from i (outer), y from j.
    gx = [i * dilation_w - half_w for i in range(kernel_w) for _ in range(kernel_h)]
    gy = [j * dilation_h - half_h for _ in range(kernel_w) for j in range(kernel_h)]

    # Offsets (N, Ho, Wo, G, P, 2) -> x, y each (N, Ho, Wo, G, P).
    off = op.Reshape(offset, ints([0, 0, 0, G, P, 2]))
    off_x = op.Squeeze(op.Slice(off, ints([0]), ints([1]), ints([5])), ints([5]))
    off_y = op.Squeeze(op.Slice(off, ints([1]), ints([2]), ints([5])), ints([5]))
    x = op.Add(op.Reshape(cx, ints([1, 1, -1, 1, 1])),
               op.Mul(op.Add(off_x, const(gx)), const([scale])))
    y = op.Add(op.Reshape(cy, ints([1, -1, 1, 1, 1])),
               op.Mul(op.Add(off_y, const(gy)), const([scale])))

    # GridSample with align_corners=0 puts pixel k's centre at (2k + 1) / size - 1.
    two, unit = const([2.0]), const([1.0])
    grid_x = op.Sub(op.Div(op.Add(op.Mul(x, two), unit), W), unit)
    grid_y = op.Sub(op.Div(op.Add(op.Mul(y, two), unit), H), unit)
    grid = op.Concat(op.Unsqueeze(grid_x, ints([5])),
                     op.Unsqueeze(grid_y, ints([5])), axis=5)
    # (N, Ho, Wo, G, P, 2) -> (N*G, Ho*Wo, P, 2)
    grid = op.Transpose(grid, perm=[0, 3, 1, 2, 4, 5])
    grid = op.Reshape(grid, op.Concat(ints([-1]), op.Mul(Ho, Wo), ints([P, 2]),
                                      axis=0))

    # Input (N, H, W, G*D) -> (N*G, D, H, W)
    value = op.Transpose(op.Reshape(input, ints([0, 0, 0, G, D])),
                         perm=[0, 3, 4, 1, 2])
    value = op.Reshape(value, op.Concat(ints([-1, D]),
                                        op.Slice(in_shape, ints([1]), ints([3])),
                                        axis=0))
    sampled = op.GridSample(value, grid, mode='bilinear', padding_mode='zeros',
                            align_corners=0)          # (N*G, D, Ho*Wo, P)

    # Mask (N, Ho, Wo, G*P) -> (N*G, 1, Ho*Wo, P), then the weighted sum.
    weight = op.Transpose(op.Reshape(mask, ints([0, -1, G, P])), perm=[0, 2, 1, 3])
    weight = op.Reshape(weight, ints([-1, 1, 0, P]))
    out = op.ReduceSum(op.Mul(sampled, weight), ints([3]), keepdims=0)  # (N*G, D, Ho*Wo)

    # (N*G, D, Ho*Wo) -> (N, G, D, Ho, Wo) -> (N, Ho, Wo, G*D)
    out = op.Reshape(out, op.Concat(ints([-1, G, D]), Ho, Wo, axis=0))
    out = op.Transpose(out, perm=[0, 3, 4, 1, 2])
    return op.Reshape(out, ints([0, 0, 0, G * D]))


def dcnv3_plugin(input, offset, mask, kernel_h: int, kernel_w: int,
                 stride_h: int, stride_w: int, pad_h: int, pad_w: int,
                 dilation_h: int, dilation_w: int, group: int,
                 group_channels: int, offset_scale: float,
                 im2col_step: int = IM2COL_STEP):
    """Plugin translation of ``ops_dcnv3::dcnv3``: one ``mmdeploy::TRTDCNv3``
    node with the op's scalars as attributes (names in
    :data:`PLUGIN_ATTRIBUTES`).

    Args:
        input, offset, mask: ONNX values, as for :func:`dcnv3_portable`.
        kernel_h ... group_channels, im2col_step: int attributes.
        offset_scale: float attribute.
    """
    import onnxscript
    ints = _int_attrs(kernel_h=kernel_h, kernel_w=kernel_w, stride_h=stride_h,
                      stride_w=stride_w, pad_h=pad_h, pad_w=pad_w,
                      dilation_h=dilation_h, dilation_w=dilation_w,
                      group=group, group_channels=group_channels,
                      im2col_step=im2col_step)
    node = onnxscript.values.Op(
        onnxscript.values.Opset(PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION), PLUGIN_OP,
        plugin_schema())
    return node(input, offset, mask, offset_scale=float(offset_scale), **ints)


def plugin_schema():
    """The ONNX schema of ``mmdeploy::TRTDCNv3`` (not registered with onnx:
    it only describes the node to the graph builder)."""
    from onnx.defs import OpSchema
    attr = OpSchema.AttrType
    return OpSchema(
        PLUGIN_OP, PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION,
        doc='DCNv3 core op (TensorRT plugin); tensors channels-last.',
        inputs=[OpSchema.FormalParameter('input', 'T'),
                OpSchema.FormalParameter('offset', 'T'),
                OpSchema.FormalParameter('mask', 'T')],
        outputs=[OpSchema.FormalParameter('output', 'T')],
        type_constraints=[('T', ['tensor(float)', 'tensor(float16)',
                                 'tensor(bfloat16)', 'tensor(double)'],
                           'floating point tensors')],
        attributes=[OpSchema.Attribute(
            name, attr.FLOAT if name == 'offset_scale' else attr.INT)
            for name in PLUGIN_ATTRIBUTES])


def translation_table(plugin: bool = False) -> Dict[Callable, Callable]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``.

    Args:
        plugin: the plugin form (``mmdeploy::TRTDCNv3``) instead of the
            portable one.
    """
    return {_registered_op(): dcnv3_plugin if plugin else dcnv3_portable}


def register_torchscript_plugin_symbolic(opset: int = OPSET) -> None:
    """Plugin form for the TorchScript exporter (``torch.onnx.export(...,
    dynamo=False)``), which mmdeploy 1.x drives: every traced
    ``ops_dcnv3::dcnv3`` becomes one ``mmdeploy::TRTDCNv3`` node, as the
    reference's deployment wrote it.

    Args:
        opset: the opset the export will use (the symbolic is registered
            from this version on).
    """
    _registered_op()

    def symbolic(g, input, offset, mask, *scalars):
        from torch.onnx import symbolic_helper
        values = [symbolic_helper._maybe_get_const(v, 'f' if name == 'offset_scale'
                                                   else 'i')
                  for name, v in zip(PLUGIN_ATTRIBUTES, scalars)]
        attrs = {f'{name}_{"f" if name == "offset_scale" else "i"}':
                 (float(v) if name == 'offset_scale' else int(v))
                 for name, v in zip(PLUGIN_ATTRIBUTES, values)}
        return g.op(f'{PLUGIN_DOMAIN}::{PLUGIN_OP}', input, offset, mask, **attrs)

    torch.onnx.register_custom_op_symbolic('ops_dcnv3::dcnv3', symbolic, opset)


# ------------------------------------------------------------------ export


def _registered_core(input, offset, mask, *args):
    return _registered_op()(input, offset, mask, *args, IM2COL_STEP)


@contextlib.contextmanager
def dcnv3_modules_on_registered_op() -> Iterator[None]:
    """Within the block, the DCNv3 modules (both core ops) call
    ``torch.ops.ops_dcnv3.dcnv3``, the node the translations replace."""
    from .modules.dcnv3 import DCNv3, DCNv3_pytorch
    _registered_op()
    saved = {cls: cls.__dict__['core'] for cls in (DCNv3, DCNv3_pytorch)}
    try:
        for cls in saved:
            cls.core = staticmethod(_registered_core)
        yield
    finally:
        for cls, core in saved.items():
            cls.core = core


def export(model: torch.nn.Module,
           args: Tuple[Any, ...],
           f: Union[str, os.PathLike],
           plugin: bool = False,
           input_names: Optional[Sequence[str]] = None,
           output_names: Optional[Sequence[str]] = None,
           dynamic_shapes: Optional[Any] = None,
           verbose: bool = False):
    """Exports ``model(*args)`` to the ONNX file ``f`` with DCNv3 in the
    portable (default) or plugin form.

    Args:
        model: a module in eval mode whose DCNv3 layers are
            :class:`ops_dcnv3.DCNv3` or :class:`ops_dcnv3.DCNv3_pytorch`.
        args: example inputs (tensors).
        f: path of the ONNX file to write (weights inside it, or in a data
            file next to it above :data:`EXTERNAL_DATA_BYTES`).
        plugin: write ``mmdeploy::TRTDCNv3`` nodes instead of standard ops.
        input_names, output_names: names of the graph's inputs and outputs.
        dynamic_shapes: ``torch.export`` dynamic shapes of ``args`` (e.g.
            ``({0: Dim('batch'), 2: Dim('height'), 3: Dim('width')},)``).
        verbose: print the exporter's progress.

    Returns:
        The ``torch.onnx.ONNXProgram``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f'export: model must be a torch.nn.Module, got {type(model).__name__}')
    if model.training:
        raise ValueError('export: put the model in eval mode (model.eval()) first')
    if not isinstance(args, tuple):
        raise TypeError(f'export: args must be a tuple of inputs, got {type(args).__name__}')
    f = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(f))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f'export: the directory of {f!r} does not exist')
    with dcnv3_modules_on_registered_op(), torch.no_grad():
        program = torch.onnx.export(
            model, args, f=None, dynamo=True, opset_version=OPSET,
            custom_translation_table=translation_table(plugin),
            input_names=input_names, output_names=output_names,
            dynamic_shapes=dynamic_shapes, optimize=True, verbose=verbose)
    # one self-contained file, unless the weights pass protobuf's 2 GiB
    # limit (InternImage-H/G): then they go to a data file next to it
    weight_bytes = sum(t.numel() * t.element_size()
                       for t in list(model.parameters()) + list(model.buffers()))
    program.save(f, external_data=weight_bytes > EXTERNAL_DATA_BYTES)
    return program
