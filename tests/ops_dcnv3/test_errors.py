"""Bad input gets a clear error naming the problem (both paths)."""
import pytest
import torch

from ops_dcnv3.functions import DCNv3Function, dcnv3_core_pytorch
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
    elif what == 'device':
        off = off.to('meta')
    elif what == 'empty_output':
        args[0] = args[1] = 9
        args[4] = args[5] = 0
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
    'device': (ValueError, r'same device'),
    'empty_output': (ValueError, r'empty output'),
}


@pytest.mark.parametrize('core', CORES)
@pytest.mark.parametrize('what', CASES)
def test_bad_input_raises_clear_error(core, what):
    (x, off, mask), args = _bad(what)
    exc, msg = CASES[what]
    with pytest.raises(exc, match=msg):
        core(x, off, mask, *args)


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
    with pytest.raises(ValueError, match='stride must be positive'):
        ext().dcnv3_forward(x, off, mask, 3, 3, 0, 1, 1, 1, 1, 1, 2, 4, 1.0, 64)
    with pytest.raises(TypeError, match='same dtype'):
        ext().dcnv3_forward(x, off.double(), mask, *args, 64)
    with pytest.raises(ValueError, match='must be contiguous'):
        ext().dcnv3_forward(x.transpose(1, 2), off, mask, *args, 64)


def test_module_bad_channels_and_input():
    with pytest.raises(ValueError, match='channels must be divisible by group'):
        DCNv3_pytorch(channels=10, group=4)
    with pytest.raises(ValueError, match=r'expects \(N, H, W, 8\)'):
        DCNv3_pytorch(channels=8, group=2)(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="norm_layer must be 'LN' or 'BN'"):
        DCNv3_pytorch(channels=8, group=2, norm_layer='GN')
