"""Checkpoints written through ``local_atomic``: never a partial file under
the final name."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner import Runner

import projects.internimage.engine.atomic_backend as atomic
import tests.engine.toy  # noqa: F401
from projects.internimage.engine import AtomicLocalBackend
from tests.engine.test_resume import config


def test_failing_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='local_atomic'))
    assert isinstance(backend, AtomicLocalBackend)
    target = tmp_path / 'epoch_1.pth'
    backend.put(b'old checkpoint', target)

    def disk_full(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(atomic.os, 'fsync', disk_full)
    with pytest.raises(OSError, match='No space left'):
        backend.put(b'x' * 100_000, target)
    with pytest.raises(OSError, match='No space left'):
        backend.put(b'x' * 100_000, tmp_path / 'epoch_2.pth')
    assert target.read_bytes() == b'old checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']


def test_put_text_and_new_directories(tmp_path):
    backend = AtomicLocalBackend()
    backend.put_text('epoch_3.pth', tmp_path / 'a' / 'last_checkpoint')
    assert (tmp_path / 'a' / 'last_checkpoint').read_text() == 'epoch_3.pth'
    assert os.listdir(tmp_path / 'a') == ['last_checkpoint']


KILLED_WRITER = """
import os, sys, time
import projects.internimage.engine.atomic_backend as atomic
def slow_disk(fd):
    print('writing', flush=True)
    time.sleep(60)
atomic.os.fsync = slow_disk
atomic.AtomicLocalBackend().put(b'x' * 1_000_000, {target!r})
"""


def test_sigkill_during_the_write_leaves_no_file_under_the_final_name(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    proc = subprocess.Popen([sys.executable, '-c', textwrap.dedent(
        KILLED_WRITER.format(target=str(target)))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'writing'
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert leftovers == [f'.epoch_1.pth.tmp-{socket.gethostname()}-{proc.pid}'], leftovers


def test_checkpoint_hook_writes_through_it(tmp_path, monkeypatch):
    written = []
    real_put, real_put_text = AtomicLocalBackend.put, AtomicLocalBackend.put_text
    monkeypatch.setattr(AtomicLocalBackend, 'put',
                        lambda self, obj, path: written.append(str(path)) or
                        real_put(self, obj, path))
    monkeypatch.setattr(AtomicLocalBackend, 'put_text',
                        lambda self, obj, path, encoding='utf-8': written.append(str(path))
                        or real_put_text(self, obj, path, encoding))
    cfg = config(tmp_path, 'atomic', True, rng_hook=False)
    cfg['train_cfg']['max_epochs'] = 1
    cfg['default_hooks']['checkpoint']['backend_args'] = dict(backend='local_atomic')
    Runner(**cfg).train()
    # (mmengine writes last_checkpoint itself, with open(), after the checkpoint)
    assert [os.path.basename(p) for p in written] == ['epoch_1.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    assert torch.load(tmp_path / 'epoch_1.pth', weights_only=False)['meta']['epoch'] == 1
