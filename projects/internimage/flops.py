"""FLOPs of the DCNv3 operator for mmengine's complexity counter.

mmengine's ``FlopAnalyzer`` (``mmengine.analysis``; used by
``get_model_complexity_info`` and so by mmdet's and mmseg's
``tools/analysis_tools/get_flops.py``) traces a model with ``torch.jit`` and
counts the operators it has a handle for. The compiled DCNv3 is the
registered operator ``ops_dcnv3::dcnv3``; :func:`register_dcnv3_flop_handle`
adds a handle for it to the counter's default table, so that every
``FlopAnalyzer`` built afterwards counts each DCNv3 call as

    5 * n * k * c

(n output pixels over the batch, k = kernel_h * kernel_w sampling points,
c = group * group_channels channels): per point and channel, four bilinear
taps and the mask weight. It is the sampling term our ``tools/get_flops.py``
adds; the layers around the op (input/output projections, offset and mask
linears, depth-wise conv) are counted by the standard handles.

The pure-PyTorch core op (``DCNv3_pytorch``) is counted through its own
``grid_sampler`` and arithmetic operators instead; use the compiled one for
figures comparable with the published tables.
"""
from collections import Counter
from typing import Any, List

#: Name of the operator in TorchScript traces.
DCNV3_OP_NAME = 'ops_dcnv3::dcnv3'
#: Operator name shown in ``FlopAnalyzer.by_operator()``.
DCNV3_COUNTER_NAME = 'dcnv3'
#: FLOPs per output pixel, sampling point and channel.
FLOPS_PER_SAMPLE = 5


def dcnv3_flops(output_shape: List[int], kernel_h: int, kernel_w: int) -> int:
    """``5 * n * k * c`` for a DCNv3 call.

    Args:
        output_shape: the op's output shape, (N, Ho, Wo, group * group_channels).
        kernel_h: kernel height.
        kernel_w: kernel width.

    Returns:
        The FLOP count.
    """
    if len(output_shape) != 4:
        raise ValueError('DCNv3 output must be 4-D (N, Ho, Wo, C), got shape '
                         f'{tuple(output_shape)}')
    n, ho, wo, c = (int(v) for v in output_shape)
    return FLOPS_PER_SAMPLE * n * ho * wo * int(kernel_h) * int(kernel_w) * c


def dcnv3_flop_jit(inputs: List[Any], outputs: List[Any]) -> Counter:
    """mmengine jit handle of ``ops_dcnv3::dcnv3``.

    Args:
        inputs: the traced call's input values (input, offset, mask,
            kernel_h, kernel_w, ...).
        outputs: its output values.

    Returns:
        ``Counter({'dcnv3': flops})``.
    """
    from mmengine.analysis.jit_handles import get_shape
    out_shape = get_shape(outputs[0])
    if out_shape is None:
        raise ValueError(f'{DCNV3_OP_NAME}: the trace has no complete output '
                         'shape to count FLOPs from')
    kernel_h, kernel_w = inputs[3].toIValue(), inputs[4].toIValue()
    if kernel_h is None or kernel_w is None:
        # Not constants in the trace: the mask holds group * k points per
        # pixel, the output group * group_channels channels.
        mask_c = get_shape(inputs[2])[-1]
        group = inputs[11].toIValue()
        kernel_h, kernel_w = mask_c // group, 1
    return Counter({DCNV3_COUNTER_NAME: dcnv3_flops(out_shape, kernel_h, kernel_w)})


def dcnv3_activation_jit(inputs: List[Any], outputs: List[Any]) -> Counter:
    """mmengine activation handle of ``ops_dcnv3::dcnv3``: its output size,
    as for convolutions and linears."""
    from mmengine.analysis.jit_handles import get_shape
    n = 1
    for v in get_shape(outputs[0]) or ():
        n *= int(v)
    return Counter({DCNV3_COUNTER_NAME: n})


def register_dcnv3_flop_handle() -> None:
    """Adds the DCNv3 handles to mmengine's default FLOP and activation
    tables (idempotent). Called when :mod:`projects.internimage` is imported,
    e.g. through a config's ``custom_imports``."""
    from mmengine.analysis import complexity_analysis as ca
    ca._DEFAULT_SUPPORTED_FLOP_OPS[DCNV3_OP_NAME] = dcnv3_flop_jit
    ca._DEFAULT_SUPPORTED_ACT_OPS[DCNV3_OP_NAME] = dcnv3_activation_jit
