"""Stopping tools/dist_train.sh stops the whole job.

torchrun starts each worker in a session of its own, so neither Ctrl-C in
the terminal nor a SIGTERM to the launcher reached the workers: they trained
on. The launcher now forwards both to torchrun and every worker's process
group, and kills what is left after a grace period. A SIGKILL (to the
launcher or to torchrun) cannot be forwarded: the kernel's parent-death
signal stops torchrun and the workers then.

Its exit status is 128 + the signal however it was started and scheduled:
also when it starts with SIGINT ignored (a background job of a script, where
bash cannot trap SIGINT: Ctrl-C then reached torchrun alone, which stopped the
workers and exited 1), and when torchrun has handled the Ctrl-C and exited
before the launcher ran at all (a loaded machine).
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest

from tests.helpers import REPO_ROOT

CONFIG = 'tests/engine/toy_train_config.py'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def children(pid: int) -> List[int]:
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / 'stat').read_text()
            except OSError:
                continue
            if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def sigint_at_start(how: str) -> Callable[[], None]:
    """What the launcher starts with: SIGINT ignored as in a background job of
    a non-interactive shell, else at its default action as in a terminal's
    foreground job (whatever the disposition pytest itself inherited)."""
    action = signal.SIG_IGN if how == 'ctrl_c_launcher_started_with_sigint_ignored' \
        else signal.SIG_DFL
    return lambda: signal.signal(signal.SIGINT, action)


@pytest.mark.parametrize('how', ['sigterm_to_launcher', 'ctrl_c_to_process_group',
                                 'ctrl_c_launcher_started_with_sigint_ignored',
                                 'ctrl_c_while_the_launcher_is_not_scheduled',
                                 'sigkill_to_launcher', 'sigkill_to_torchrun'])
def test_stopping_the_launcher_stops_every_worker(tmp_path, how):
    log = open(tmp_path / 'launcher.log', 'w')
    env = dict(os.environ, PORT=str(free_port()), STOP_GRACE='5', PYTHON=sys.executable)
    launcher = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', 'train_cfg.max_epochs=100000'],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=sigint_at_start(how))
    job: List[int] = []
    try:
        deadline = time.time() + 120
        torchrun = workers = []
        while time.time() < deadline and launcher.poll() is None:
            torchrun = children(launcher.pid)
            workers = [w for t in torchrun for w in children(t)]
            if len(workers) == 2:
                break
            time.sleep(0.2)
        time.sleep(2)  # the workers are starting (in their own sessions from the start)
        assert len(workers) == 2, (tmp_path / 'launcher.log').read_text()[-3000:]
        job = torchrun + workers
        # the workers run in sessions of their own
        assert all(os.getsid(w) == w for w in workers)
        if how == 'sigterm_to_launcher':
            launcher.send_signal(signal.SIGTERM)
            expected = 128 + signal.SIGTERM
        elif how == 'sigkill_to_launcher':  # nothing to trap: the kernel tells torchrun
            launcher.send_signal(signal.SIGKILL)
            expected = -signal.SIGKILL
        elif how == 'sigkill_to_torchrun':  # the kernel tells the workers
            os.kill(torchrun[0], signal.SIGKILL)
            expected = None
        elif how == 'ctrl_c_while_the_launcher_is_not_scheduled':
            # The worst schedule: torchrun gets the Ctrl-C too, stops the
            # workers and exits before the launcher runs again.
            launcher.send_signal(signal.SIGSTOP)
            os.killpg(launcher.pid, signal.SIGINT)
            start = time.time()
            while time.time() - start < 30 and any(running(p) for p in job):
                time.sleep(0.2)
            assert not any(running(p) for p in job), 'torchrun did not stop on SIGINT'
            launcher.send_signal(signal.SIGCONT)
            expected = 128 + signal.SIGINT
        else:  # what the terminal does on Ctrl-C: SIGINT to the foreground group
            os.killpg(launcher.pid, signal.SIGINT)
            expected = 128 + signal.SIGINT
        # The launcher exits once it has stopped the job (after at most
        # STOP_GRACE seconds it kills what is left); on a loaded machine
        # that takes longer than the grace period, so wait for the launcher
        # rather than for a fixed time.
        if expected is not None:
            assert launcher.wait(timeout=90) == expected
        start = time.time()
        # after a SIGKILL, torchrun and the workers stop on their parent-death
        # signal: torchrun's own shutdown of the workers takes a while
        while time.time() - start < 30 and any(running(p) for p in job):
            time.sleep(0.2)
        survivors = [p for p in job if running(p)]
        assert not survivors, f'still running after the launcher exited: {survivors}'
    finally:
        for pid in job + [launcher.pid]:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
