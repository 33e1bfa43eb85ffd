"""Reading checkpoint files: damaged files, weights-only loading, NaN/inf."""
import logging
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import projects.internimage.checkpoint.reader as reader
from projects.internimage.checkpoint.reader import (InvalidCheckpointError,
                                                    load_checkpoint_file, read_checkpoint)


@pytest.fixture
def logs(monkeypatch):
    """(level, message) of every print_log call of the reader."""
    records = []
    monkeypatch.setattr(reader, 'print_log',
                        lambda msg, logger=None, level=logging.INFO: records.append(
                            (level, msg)))
    return records


def weights(scale: float = 1e-2):
    gen = torch.Generator().manual_seed(0)
    return {f'layer{i}.weight': torch.randn(32, 32, generator=gen) * scale for i in range(8)}


def mmengine_checkpoint():
    """What mmengine's Runner.save_checkpoint writes (meta, message hub,
    optimizer and scheduler state, numpy values)."""
    return {
        'meta': {'epoch': 1, 'iter': 4, 'seed': 0, 'cfg': "model = dict(type='X')",
                 'dataset_meta': {'classes': ('a', 'b')}, 'time': '20261201'},
        'state_dict': weights(),
        'message_hub': {
            'log_scalars': {'train/loss': HistoryBuffer([1.0, 0.5], [1, 1]),
                            'train/lr': HistoryBuffer(np.array([0.1]), np.array([1]))},
            'runtime_info': {'epoch': 1, 'iter': 4, 'max_iters': 8,
                             'seed': np.int64(7), 'ratio': np.float32(0.5)},
            'resumed_keys': {'epoch': True}},
        'optimizer': {'state': {0: {'step': torch.tensor(4.0), 'exp_avg': torch.zeros(3)}},
                      'param_groups': [{'lr': 0.1, 'betas': (0.9, 0.999), 'params': [0]}]},
        'param_schedulers': [{'base_lrs': [0.1], 'last_step': 4}],
    }


CALLS = []


def record_call(text: str) -> str:
    CALLS.append(text)
    return text


class Payload:
    """An object a weights-only load refuses; unpickling it calls record_call."""

    def __reduce__(self):
        return (record_call, ('ran',))


def test_mmengine_checkpoint_loads_weights_only(tmp_path, logs):
    path = tmp_path / 'epoch_1.pth'
    torch.save(mmengine_checkpoint(), path)
    ckpt = read_checkpoint(str(path), allow_unsafe=False)
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 0.75
    assert ckpt['message_hub']['runtime_info']['seed'] == 7
    assert torch.equal(ckpt['state_dict']['layer3.weight'], weights()['layer3.weight'])
    assert not logs, logs


def test_other_objects_are_refused_unless_trusted(tmp_path, logs, monkeypatch):
    path = tmp_path / 'ref.pth'
    torch.save({'model': weights(), 'config': Payload()}, path)
    CALLS.clear()
    with pytest.raises(reader.UnsafeCheckpointError) as info:
        read_checkpoint(str(path))
    assert str(info.value).startswith(
        f'{path} is not allowed: its pickle imports tests.checkpoint.test_reader.record_call, '
        'which a weights-only load refuses')
    assert CALLS == [] and logs == []
    monkeypatch.setenv(reader.TRUST_ENV, str(path))
    ckpt = read_checkpoint(str(path))
    assert CALLS == ['ran']  # the full unpickler ran the file's code
    assert torch.equal(ckpt['model']['layer0.weight'], weights()['layer0.weight'])
    assert len(logs) == 1
    level, msg = logs[0]
    assert level == logging.WARNING and str(path) in msg and 'record_call' in msg
    assert 'weights_only=False' in msg


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    """mmengine checkpoints pickle getattr(HistoryBuffer, 'min'); no other
    getattr passes the weights-only load."""

    class Sneaky:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(reader.UnsafeCheckpointError, match=r"sneaky\.pth is not allowed: its "
                       r"pickle imports builtins\.getattr\(HistoryBuffer, '__init__'\)"):
        read_checkpoint(str(path), allow_unsafe=False)
    with pytest.raises(pickle.UnpicklingError, match=r"getattr\(HistoryBuffer, '__init__'\)"):
        reader._history_buffer_getattr(HistoryBuffer, '__init__')
    assert reader._history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean


def _write_damaged(tmp_path, kind: str):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': weights()}, good)
    data = bytearray(good.read_bytes())
    path = tmp_path / f'{kind}.pth'
    if kind == 'empty':
        data = bytearray()
    elif kind == 'text':
        data = bytearray(b'model = dict(type="InternImage")\n')
    elif kind == 'truncated':
        data = data[:len(data) // 2]
    elif kind == 'flipped_4kb':
        # the 4 KB of one weight record: torch.load alone accepts it, with huge values
        info = zipfile.ZipFile(good).getinfo('good/data/3')
        name_len, extra_len = np.frombuffer(bytes(data[info.header_offset + 26:
                                                       info.header_offset + 30]), '<u2')
        start = info.header_offset + 30 + int(name_len) + int(extra_len)
        for i in range(start, start + info.file_size):
            data[i] ^= 0xFF
    elif kind == 'random_bytes':
        data = bytearray(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    elif kind == 'pickle_garbage':
        data = bytearray(b'\x80\x02' + bytes(range(200)))
    path.write_bytes(bytes(data))
    return path


DAMAGED = {
    'empty': 'the file is empty',
    'text': 'neither a zip archive nor a pickle',
    'truncated': 'its zip archive is damaged',
    'flipped_4kb': 'fails its CRC-32 check',
    'random_bytes': 'neither a zip archive nor a pickle',
    'pickle_garbage': 'not a valid checkpoint',
}


@pytest.mark.parametrize('kind', sorted(DAMAGED))
def test_damaged_files_are_refused_naming_the_file(tmp_path, kind):
    path = _write_damaged(tmp_path, kind)
    with pytest.raises(InvalidCheckpointError) as info:
        load_checkpoint_file(str(path))
    msg = str(info.value)
    assert msg.startswith(f'{path} is not a valid checkpoint'), msg
    assert DAMAGED[kind] in msg


def test_torch_alone_loads_the_flipped_file(tmp_path):
    """Why the CRC check exists: torch.load does not verify CRCs."""
    path = _write_damaged(tmp_path, 'flipped_4kb')
    loaded = torch.load(path, weights_only=True)['state_dict']
    assert max(v.abs().max().item() for v in loaded.values()) > 1e3


def test_files_without_crcs_load(tmp_path):
    """set_crc32_options(False) writes zero CRCs: not mistaken for damage."""
    path = tmp_path / 'nocrc.pth'
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({'state_dict': weights()}, path)
    finally:
        torch.serialization.set_crc32_options(True)
    assert all(i.CRC == 0 for i in zipfile.ZipFile(path).infolist())
    ckpt = read_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['layer1.weight'], weights()['layer1.weight'])


def test_legacy_format_loads(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'state_dict': weights()}, path, _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(str(path), allow_unsafe=False)
    assert torch.equal(ckpt['state_dict']['layer2.weight'], weights()['layer2.weight'])


@pytest.mark.parametrize('layout', ['state_dict', 'model', 'top'])
@pytest.mark.parametrize('bad', [float('nan'), float('-inf')])
def test_non_finite_weights_are_refused(tmp_path, layout, bad):
    sd = weights()
    sd['layer5.weight'][3, 4] = bad
    path = tmp_path / 'nf.pth'
    torch.save(sd if layout == 'top' else {layout: sd}, path)
    with pytest.raises(InvalidCheckpointError,
                       match=r'nf\.pth is not a valid checkpoint: NaN or inf in 1 tensor\(s\): '
                       r'layer5\.weight \(1 of 1024 values\)'):
        load_checkpoint_file(str(path))


def test_all_nan_checkpoint_names_the_keys(tmp_path):
    path = tmp_path / 'allnan.pth'
    torch.save({'state_dict': {k: torch.full_like(v, float('nan'))
                               for k, v in weights().items()}}, path)
    with pytest.raises(InvalidCheckpointError, match=r'NaN or inf in 8 tensor\(s\): '
                       r'layer0\.weight .*and 3 more'):
        load_checkpoint_file(str(path))


def test_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth can not be found'):
        read_checkpoint(str(tmp_path / 'nope.pth'))
    os.mkdir(tmp_path / 'dir.pth')
    with pytest.raises(FileNotFoundError, match='dir.pth can not be found'):
        read_checkpoint(str(tmp_path / 'dir.pth'))


def test_url_checkpoints_are_downloaded_and_read_the_same_way(tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from projects.internimage.checkpoint.reader import load_checkpoint_url
    served = tmp_path / 'served'
    served.mkdir()
    torch.save({'state_dict': weights()}, served / 'good.pth')
    bad = weights()
    bad['layer7.weight'][0, 0] = float('nan')
    torch.save({'state_dict': bad}, served / 'nan.pth')
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_address[1]}'
    try:
        ckpt = load_checkpoint_url(f'{url}/good.pth', model_dir=str(tmp_path / 'cache'))
        assert torch.equal(ckpt['state_dict']['layer4.weight'], weights()['layer4.weight'])
        assert (tmp_path / 'cache' / 'good.pth').is_file()
        with pytest.raises(InvalidCheckpointError, match=r'cache/nan\.pth is not a valid '
                           r'checkpoint: NaN or inf in 1 tensor\(s\): layer7\.weight'):
            load_checkpoint_url(f'{url}/nan.pth', model_dir=str(tmp_path / 'cache'))
    finally:
        server.shutdown()


def _bytes_read() -> int:
    """What this process has read so far (Linux ``rchar``: every read call)."""
    for line in open('/proc/self/io'):
        if line.startswith('rchar'):
            return int(line.split()[1])
    raise AssertionError('/proc/self/io has no rchar line')


@pytest.mark.parametrize('kind', ['zip', 'legacy', 'needs_full_unpickler'])
def test_the_file_is_read_once(tmp_path, kind, logs):
    """The CRC check, the weights-only load and (for files with other
    objects) the full unpickler all work on one read of the file."""
    path = tmp_path / 'big.pth'
    big = {f'w{i}': torch.randn(256, 512, generator=torch.Generator().manual_seed(i))
           for i in range(8)}
    checkpoint = {'state_dict': big}
    if kind == 'needs_full_unpickler':
        checkpoint['config'] = Payload()
    torch.save(checkpoint, path, _use_new_zipfile_serialization=kind != 'legacy')
    size = path.stat().st_size
    before = _bytes_read()
    loaded = read_checkpoint(str(path), allow_unsafe=True)
    read = _bytes_read() - before
    assert torch.equal(loaded['state_dict']['w7'], big['w7'])
    assert size <= read < 1.1 * size, (read, size)
