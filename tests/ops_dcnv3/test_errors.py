"""Bad input gets a clear error naming the problem (both paths)."""
import pytest
import torch

from ops_dcnv3.functions import DCNv3Function
from ops_dcnv3.modules import DCNv3_pytorch

from tests.helpers import op_cores, random_case, requires_compiled

CORES = op_cores()


def _case():
    return random_case(N=2, H=5, W=6, G=2, D=4, dtype=torch.float32, seed=0)


def _bad(what):
    (x, off, mask), args = _case()
    if what == 'rank':
        x = x[0]
    elif what == 'channels':
        args[9] = 3  # group_channels: C != group * group_channels
    elif what == 'offset_shape':
        off = off[..., :-2]
    elif what == 'mask_shape':
        mask = mask[:, :-1]
    elif what == 'offset_size':
        off = off[:, :, :-1]
    elif what == 'dtype':
        off = off.double()
    elif what == 'integer_dtype':
        x = x.long()
    elif what == 'zero_stride':
        args[2] = 0
    elif what == 'negative_stride':
        args[3] = -1
    elif what == 'zero_dilation':
        args[6] = 0
    elif what == 'negative_dilation':
        args[7] = -2
    elif what == 'negative_pad':
        args[4] = -1
    elif what == 'meta_input':
        x = x.to('meta')
    elif what == 'meta_offset':
        off = off.to('meta')
    elif what == 'empty_output':
        args[0] = args[1] = 9
        args[4] = args[5] = 0
    elif what == 'numpy_input':
        x = x.numpy()
    elif what == 'none_offset':
        off = None
    elif what == 'numpy_mask':
        mask = mask.numpy()
    elif what == 'sparse_input':
        x = x.to_sparse()
    elif what == 'sparse_mask':
        mask = mask.to_sparse()
    elif what == 'bool_stride':
        args[2] = True
    elif what == 'bool_kernel':
        args[1] = True
    elif what == 'bool_group':
        args[8], args[9] = True, 8
    elif what == 'float_pad':
        args[4] = 1.0
    elif what == 'huge_pad':
        args[5] = 2 ** 31
    elif what == 'huge_dilation':
        args[6] = 2 ** 40
    elif what == 'beyond_int64':
        args[7] = 2 ** 64
    elif what in ('nan_scale', 'inf_scale', 'neg_inf_scale', 'huge_scale'):
        args[10] = {'nan_scale': float('nan'), 'inf_scale': float('inf'),
                    'neg_inf_scale': float('-inf'), 'huge_scale': -1e308}[what]
    elif what == 'bool_scale':
        args[10] = True
    elif what == 'string_scale':
        args[10] = '1.0'
    elif what in ('zero_height', 'zero_width'):
        # Padding 2 gives a non-empty output (2 x 5 or 3 x 2) from a 0-pixel
        # image: refused, as by torch's convolutions.
        H, W = (0, 3) if what == 'zero_height' else (1, 0)
        x = x[:, :H, :W]
        args[4] = args[5] = 2
        Ho, Wo = H + 2, W + 2
        off = torch.zeros(2, Ho, Wo, off.shape[-1])
        mask = torch.zeros(2, Ho, Wo, mask.shape[-1])
    return (x, off, mask), args


CASES = {
    'rank': (ValueError, r'input must be 4-D'),
    'channels': (ValueError, r'input has 8 channels, expected group \* group_channels'),
    'offset_shape': (ValueError, r'offset must have shape \(2, 5, 6, 36\)'),
    'offset_size': (ValueError, r'offset must have shape'),
    'mask_shape': (ValueError, r'mask must have shape \(2, 5, 6, 18\)'),
    'dtype': (TypeError, r'same dtype.*float32.*float64'),
    'integer_dtype': (TypeError, r'input must be a floating-point tensor'),
    'zero_stride': (ValueError, r'stride_h must be > 0, got 0'),
    'negative_stride': (ValueError, r'stride_w must be > 0, got -1'),
    'zero_dilation': (ValueError, r'dilation_h must be > 0, got 0'),
    'negative_dilation': (ValueError, r'dilation_w must be > 0, got -2'),
    'negative_pad': (ValueError, r'pad_h must be >= 0, got -1'),
    'meta_input': (ValueError, r'input is on the meta device'),
    'meta_offset': (ValueError, r'offset is on the meta device'),
    'empty_output': (ValueError, r'empty output'),
    'numpy_input': (TypeError, r'input must be a torch.Tensor, got ndarray'),
    'none_offset': (TypeError, r'offset must be a torch.Tensor, got NoneType'),
    'numpy_mask': (TypeError, r'mask must be a torch.Tensor, got ndarray'),
    'sparse_input': (TypeError, r'input must be a dense \(strided\) tensor.*sparse_coo'),
    'sparse_mask': (TypeError, r'mask must be a dense \(strided\) tensor'),
    'bool_stride': (TypeError, r'stride_h must be an int, got bool'),
    'bool_kernel': (TypeError, r'kernel_w must be an int, got bool'),
    'bool_group': (TypeError, r'group must be an int, got bool'),
    'float_pad': (TypeError, r'pad_h must be an int, got float'),
    'huge_pad': (ValueError, r'pad_w must be < 2\*\*31, got 2147483648'),
    'huge_dilation': (ValueError, r'dilation_h must be < 2\*\*31'),
    'beyond_int64': (ValueError, r'dilation_w must be < 2\*\*31, got 18446744073709551616'),
    'nan_scale': (ValueError, r'offset_scale must be finite, got nan'),
    'inf_scale': (ValueError, r'offset_scale must be finite, got inf'),
    'neg_inf_scale': (ValueError, r'offset_scale must be finite, got -inf'),
    # finite as a double, infinite as the float the float32 kernels use
    'huge_scale': (ValueError, r"offset_scale must be within float32's range "
                               r'\(\|offset_scale\| <= 3\.4028234663852886e\+38\)'),
    'bool_scale': (TypeError, r'offset_scale must be a float, got bool'),
    'string_scale': (TypeError, r'offset_scale must be a float, got str'),
    'zero_height': (ValueError, r'input has an empty image \(0x3'),
    'zero_width': (ValueError, r'input has an empty image \(1x0'),
}


@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('what', CASES)
def test_bad_input_raises_clear_error(core, what):
    (x, off, mask), args = _bad(what)
    exc, msg = CASES[what]
    with pytest.raises(exc, match=msg):
        core(x, off, mask, *args)


#: Cases whose arguments the dispatcher takes as the schema's types: the
#: operator itself (its C++ kernels, or its fake kernel for meta tensors)
#: gives the error. The others are refused in Python by DCNv3Function.apply.
OPERATOR_CASES = [what for what in CASES if not what.startswith(
    ('numpy_', 'none_', 'bool_', 'float_', 'string_', 'beyond_'))]


@requires_compiled
@pytest.mark.parametrize('what', OPERATOR_CASES)
def test_operator_called_directly_raises_the_same_error(what):
    (x, off, mask), args = _bad(what)
    exc, msg = CASES[what]
    with pytest.raises(exc, match=msg):
        torch.ops.ops_dcnv3.dcnv3(x, off, mask, *args, 64)


@requires_compiled
@pytest.mark.parametrize('step', [0, -4])
def test_bad_im2col_step(step):
    (x, off, mask), args = _case()
    with pytest.raises(ValueError, match='im2col_step must be > 0'):
        DCNv3Function.apply(x, off, mask, *args, step)


@requires_compiled
def test_extension_checks_its_own_inputs():
    """Direct callers of the extension get errors too, not crashes."""
    from ops_dcnv3._ext import ext
    (x, off, mask), args = _case()
    with pytest.raises(ValueError, match='offset must have shape'):
        ext().dcnv3_forward(x, off[..., :-2], mask, *args, 64)
    with pytest.raises(ValueError, match=r'stride_h must be > 0, got 0'):
        ext().dcnv3_forward(x, off, mask, 3, 3, 0, 1, 1, 1, 1, 1, 2, 4, 1.0, 64)
    with pytest.raises(ValueError, match=r'pad_h must be < 2\*\*31, got 2147483648'):
        ext().dcnv3_forward(x, off, mask, 3, 3, 1, 1, 2 ** 31, 1, 1, 1, 2, 4, 1.0, 64)
    with pytest.raises(ValueError, match='offset_scale must be finite'):
        ext().dcnv3_forward(x, off, mask, 3, 3, 1, 1, 1, 1, 1, 1, 2, 4, float('nan'), 64)
    with pytest.raises(ValueError, match='input has an empty image'):
        ext().dcnv3_forward(x[:, :0], off, mask, *args, 64)
    with pytest.raises(TypeError, match='same dtype'):
        ext().dcnv3_forward(x, off.double(), mask, *args, 64)
    with pytest.raises(ValueError, match='must be contiguous'):
        ext().dcnv3_forward(x.transpose(1, 2).contiguous().transpose(1, 2), off, mask,
                            *args, 64)


def test_module_bad_channels_and_input():
    with pytest.raises(ValueError, match='channels must be divisible by group'):
        DCNv3_pytorch(channels=10, group=4)
    with pytest.raises(ValueError, match=r'expects \(N, H, W, 8\)'):
        DCNv3_pytorch(channels=8, group=2)(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match=r'with H, W > 0, got shape \(1, 0, 4, 8\)'):
        DCNv3_pytorch(channels=8, group=2)(torch.randn(1, 0, 4, 8))
    with pytest.raises(ValueError, match="norm_layer must be 'LN' or 'BN'"):
        DCNv3_pytorch(channels=8, group=2, norm_layer='GN')


MODULE_CASES = {
    'zero_group': (dict(group=0), ValueError, r'group must be > 0, got 0'),
    'zero_channels': (dict(channels=0), ValueError, r'channels must be > 0, got 0'),
    'float_channels': (dict(channels=8.0), TypeError, r'channels must be an int, got float'),
    'bool_group': (dict(group=True), TypeError, r'group must be an int, got bool'),
    'even_kernel': (dict(kernel_size=4), ValueError,
                    r'dw_kernel_size must be odd .*got 4 \(from kernel_size\)'),
    'even_dw_kernel': (dict(dw_kernel_size=2), ValueError, r'dw_kernel_size must be odd'),
    'kernel_pad_mismatch': (dict(kernel_size=5, pad=1), ValueError,
                            r'2 \* pad must equal dilation \* \(kernel_size - 1\), got '
                            r'pad=1, dilation=1, kernel_size=5'),
    'zero_pad': (dict(pad=0), ValueError, r'2 \* pad must equal.*pad=0'),
    'stride_2': (dict(stride=2), ValueError, r'stride must be 1 .*got 2'),
    'negative_pad': (dict(pad=-1), ValueError, r'pad must be >= 0, got -1'),
    'zero_dilation': (dict(dilation=0), ValueError, r'dilation must be > 0, got 0'),
    'nan_offset_scale': (dict(offset_scale=float('nan')), ValueError,
                         r'offset_scale must be finite, got nan'),
    'str_offset_scale': (dict(offset_scale='1'), TypeError, r'offset_scale must be a float'),
    'cfs_not_bool': (dict(center_feature_scale='yes'), TypeError,
                     r'center_feature_scale must be a bool'),
}


@pytest.mark.parametrize('what', MODULE_CASES)
def test_module_constructor_validation(what):
    kwargs, exc, msg = MODULE_CASES[what]
    with pytest.raises(exc, match=msg):
        DCNv3_pytorch(**{'channels': 8, 'group': 2, **kwargs})


def test_module_accepts_consistent_geometry():
    """Other kernels keep the size when pad and dilation match them."""
    for kw in (dict(kernel_size=5, pad=2), dict(kernel_size=3, pad=2, dilation=2),
               dict(kernel_size=1, pad=0, dw_kernel_size=3)):
        m = DCNv3_pytorch(channels=8, group=2, **kw)
        assert m(torch.randn(1, 5, 4, 8)).shape == (1, 5, 4, 8)
