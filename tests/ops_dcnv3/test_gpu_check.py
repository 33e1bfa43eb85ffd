"""benchmarks/gpu_check.py (make gpu-check) without a GPU: it stops with a
clear message, and its step runner keeps going past a failing, a timed-out
and a skipped step, within the time budget, with one log per step."""
import importlib.util
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import REPO_ROOT, requires_compiled

SCRIPT = REPO_ROOT / 'benchmarks' / 'gpu_check.py'


def load():
    spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible')
def test_without_a_gpu_it_stops_with_a_clear_message(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), '--out', str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert 'gpu-check:' in proc.stderr and ('no CUDA GPU is visible' in proc.stderr
                                            or 'CPU-only build' in proc.stderr)
    assert list(tmp_path.iterdir()) == []  # no step ran


def test_dry_run_lists_every_step():
    proc = subprocess.run([sys.executable, str(SCRIPT), '--dry-run'], capture_output=True,
                          text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == ['env', 'build', 'crash-table', 'ops-tests', 'backbone-goldens', 'tf32',
                     'bench']
    build = proc.stdout.splitlines()[1]
    assert 'FORCE_CUDA=1' in build and 'TORCH_CUDA_ARCH_LIST=' in build


def test_steps_go_on_past_failure_timeout_and_skip(tmp_path):
    gc = load()
    py = sys.executable
    steps = [
        gc.Step('ok', [py, '-c', 'print("fine")'], 30),
        gc.Step('fails', [py, '-c', 'import sys; print("1 failed, 2 passed"); sys.exit(3)'], 30),
        # the step and the process it starts are both killed at the timeout
        gc.Step('hangs', [py, '-c', 'import subprocess, sys, time; subprocess.Popen('
                          '[sys.executable, "-c", "import time; time.sleep(60)"]); '
                          'time.sleep(60)'], 1.5),
        gc.Step('skipped', None, 30, skip='needs the project packages'),
        gc.Step('after', [py, '-c', 'print("still runs")'], 30),
    ]
    start = time.monotonic()
    gc.run_steps(steps, tmp_path, budget=120, echo=lambda line: None)
    assert time.monotonic() - start < 30
    assert [s.status for s in steps] == ['passed', 'FAILED', 'TIMEOUT', 'skipped', 'passed']
    assert steps[1].detail == 'exit 3 (1 failed, 2 passed)'
    assert steps[2].detail.startswith('killed after 2 s') and steps[2].seconds < 10
    assert 'fine' in (tmp_path / 'ok.log').read_text()
    assert 'still runs' in (tmp_path / 'after.log').read_text()
    assert 'needs the project packages' in (tmp_path / 'skipped.log').read_text()
    text = gc.summary(steps, 12.0)
    assert 'not passed: fails, hangs' in text
    assert [line.split()[:2] for line in text.splitlines()[1:6]] == [
        ['ok', 'passed'], ['fails', 'FAILED'], ['hangs', 'TIMEOUT'], ['skipped', 'skipped'],
        ['after', 'passed']]


def test_the_budget_cuts_timeouts_and_skips_what_no_longer_fits(tmp_path):
    gc = load()
    py = sys.executable
    steps = [gc.Step('long', [py, '-c', 'import time; time.sleep(60)'], 100),
             gc.Step('next', [py, '-c', 'pass'], 100)]
    start = time.monotonic()
    gc.run_steps(steps, tmp_path, budget=2.0, echo=lambda line: None, min_step=0.5)
    assert time.monotonic() - start < 15
    assert [s.status for s in steps] == ['TIMEOUT', 'skipped']
    assert 'time budget spent' in steps[1].detail


def test_speed_table_is_taken_from_the_benchmark_log(tmp_path):
    gc = load()
    log = tmp_path / 'bench.log'
    log.write_text('$ python benchmarks/bench_dcnv3_cuda.py\n\nDCNv3 CUDA benchmark: GPU\n'
                   'measured device-to-device copy bandwidth: 4300 GB/s\n\n'
                   '| shape | N |\n|---|---|\n| cls 56x56 | 64 |\nother output\n')
    assert gc.speed_table(log).splitlines() == [
        'DCNv3 CUDA benchmark: GPU', 'measured device-to-device copy bandwidth: 4300 GB/s',
        '| shape | N |', '|---|---|', '| cls 56x56 | 64 |']


@requires_compiled
def test_crash_table_on_cpu(capsys):
    gc = load()
    crashed = gc.crash_table(['cpu'], cases=['good arguments', 'stride 0'])
    rows = capsys.readouterr().out.splitlines()[2:]
    assert crashed == 0
    assert rows[0] == '| good arguments | returns |'
    assert rows[1].startswith('| stride 0 | raises ValueError: DCNv3: stride_h must be > 0')
