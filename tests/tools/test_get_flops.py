"""tools/get_flops.py prints the FLOPs and parameters of a config's model
(the counting itself: tests/apis/test_flops.py)."""
import os
import re
import subprocess
import sys

from tests.helpers import REPO_ROOT

DEMO = REPO_ROOT / 'configs' / 'demo'


def test_cli(tmp_path):
    out = subprocess.run([
        sys.executable,
        str(REPO_ROOT / 'tools' / 'get_flops.py'),
        str(DEMO / 'upernet_internimage_demo.py'), '--shape', '64', '64'
    ],
                         cwd=tmp_path,
                         env=dict(os.environ, OMP_NUM_THREADS='1'),
                         stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    assert re.search(r'^Flops: \d+\.\dG$', out.stdout, re.M)
    assert re.search(r'^Params: \d+\.\dM$', out.stdout, re.M)
    assert 'Input shape: (3, 64, 64)' in out.stdout
