"""The no_tf32 fixture (tests/conftest.py, tests.helpers.tf32_disabled):
TF32 off inside, every setting as before after, with either precision API."""
import pytest
import torch

from tests.helpers import rel_err, tf32_disabled


def legacy_flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision())


@pytest.fixture
def restore_precision_settings():
    """Leaves the process's settings as it found them, whatever the test set."""
    saved = legacy_flags()
    paths = ('cuda.matmul', 'cudnn.conv', 'cudnn.rnn')
    new_api = {p: getattr(getattr(torch.backends, p.split('.')[0]), p.split('.')[1])
               for p in paths}
    saved_new = {p: b.fp32_precision for p, b in new_api.items()
                 if hasattr(b, 'fp32_precision')}
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])
    for path, value in saved_new.items():
        new_api[path].fp32_precision = value


@pytest.mark.parametrize('start', [(True, True), (False, True), (False, False)])
def test_tf32_off_inside_and_restored_after(restore_precision_settings, start):
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = start
    before = legacy_flags()
    with tf32_disabled():
        assert legacy_flags() == (False, False, 'highest')
    assert legacy_flags() == before


def test_with_the_fp32_precision_api_in_use(restore_precision_settings):
    conv = getattr(torch.backends.cudnn, 'conv', None)
    if conv is None or not hasattr(conv, 'fp32_precision'):
        pytest.skip('this torch has no fp32_precision API (torch < 2.9)')
    # Set through the new API alone: the legacy cuDNN flag can no longer be read.
    torch.backends.cudnn.conv.fp32_precision = 'tf32'
    torch.backends.cudnn.rnn.fp32_precision = 'ieee'
    torch.backends.cuda.matmul.fp32_precision = 'tf32'
    with tf32_disabled():
        assert (torch.backends.cudnn.conv.fp32_precision, torch.backends.cudnn.rnn.fp32_precision,
                torch.backends.cuda.matmul.fp32_precision) == ('ieee', 'ieee', 'ieee')
    assert (torch.backends.cudnn.conv.fp32_precision, torch.backends.cudnn.rnn.fp32_precision,
            torch.backends.cuda.matmul.fp32_precision) == ('tf32', 'ieee', 'tf32')


def test_the_fixture_turns_tf32_off(no_tf32):
    assert legacy_flags() == (False, False, 'highest')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA GPU visible')
def test_float32_convolution_and_matmul_in_full_precision_on_cuda(no_tf32):
    """With TF32 off, float32 results stay within float32 rounding of the
    float64 ones (TF32 gives about 1e-3 on Ampere and newer)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 32, 32, generator=gen, dtype=torch.float64)
    w = torch.randn(64, 64, 3, 3, generator=gen, dtype=torch.float64)
    a = torch.randn(256, 512, generator=gen, dtype=torch.float64)
    b = torch.randn(512, 256, generator=gen, dtype=torch.float64)
    conv = torch.nn.functional.conv2d(x.cuda().float(), w.cuda().float(), padding=1)
    mm = a.cuda().float() @ b.cuda().float()
    assert rel_err(conv, torch.nn.functional.conv2d(x, w, padding=1)) < 1e-5
    assert rel_err(mm, a @ b) < 1e-5
