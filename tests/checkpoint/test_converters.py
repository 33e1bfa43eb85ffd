"""What every reference-format conversion shares: mmdet 2.x EMA copies are
dropped before the layout is detected, the converter scripts' body reads
files with the safe reader, and the scripts' command line."""
import subprocess
import sys

import pytest
import torch

from projects.internimage.checkpoint import InvalidCheckpointError
from projects.internimage.checkpoint.converters import (convert_checkpoint, convert_file,
                                                         convert_weights)
from projects.internimage.checkpoint.converters.dino import convert_dino
from tests.helpers import REPO_ROOT
from tests.models.golden_models import load_model_golden

SCRIPTS = REPO_ROOT / 'tools' / 'model_converters'


@pytest.fixture(scope='module')
def dino():
    return load_model_golden('dino')['state_dict']


def with_ema_copies(weights):
    """``weights`` plus mmdet 2.x's EMA copies of every entry (other values)."""
    out = dict(weights)
    out.update({'ema_' + k.replace('.', '_'): v + 1 for k, v in weights.items()})
    return out


def test_ema_copies_are_dropped_before_the_layout_is_detected(dino):
    """A reference DINO file written with mmdet 2.x's EMA hook is one DINO
    checkpoint (not 'several formats'): converted, its EMA copies gone."""
    fmt, converted = convert_weights(with_ema_copies(dino), 'dino_ema.pth')
    assert fmt.name == 'dino'
    expected = convert_dino(dino)
    assert list(converted) == list(expected)
    assert all(converted[k] is v for k, v in expected.items())


def test_ema_copies_alone_are_dropped(dino):
    """An mmdet 3.x-layout (Cascade) file with EMA copies: only the copies go."""
    cascade = load_model_golden('cascade')['state_dict']
    checkpoint = convert_checkpoint({'state_dict': with_ema_copies(cascade), 'meta': {}})
    assert list(checkpoint['state_dict']) == list(cascade) and checkpoint['meta'] == {}
    # this project's own layout without copies is returned as it is
    plain = {'state_dict': dict(cascade)}
    assert convert_checkpoint(plain)['state_dict'] is plain['state_dict']


def test_convert_file_reads_with_the_safe_reader(dino, tmp_path):
    """NaN/inf weights and damaged files are refused, naming the file."""
    out = tmp_path / 'out.pth'
    bad = dict(dino)
    key = 'bbox_head.transformer.decoder.norm.weight'
    bad[key] = torch.full_like(bad[key], float('nan'))
    path = tmp_path / 'nan.pth'
    torch.save({'state_dict': bad}, path)
    with pytest.raises(InvalidCheckpointError,
                       match=rf'nan\.pth is not a valid checkpoint: NaN or inf in 1 tensor\(s\): '
                       rf'{key.replace(".", "[.]")}'):
        convert_file(str(path), str(out), 'dino')
    damaged = tmp_path / 'damaged.pth'
    torch.save({'state_dict': dino}, damaged)
    damaged.write_bytes(damaged.read_bytes()[:-1000])
    with pytest.raises(InvalidCheckpointError, match=r'damaged\.pth is not a valid checkpoint'):
        convert_file(str(damaged), str(out), 'dino')
    with pytest.raises(ValueError, match="unknown reference format 'detr'"):
        convert_file(str(path), str(out), 'detr')
    assert not out.exists()


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True,
                          text=True, timeout=300)


def test_scripts_command_line(dino, tmp_path):
    """The scripts: ``IN OUT``; a wrong input exits with 'error:' and the
    reason, writing nothing."""
    src, dst = tmp_path / 'dino_ref.pth', tmp_path / 'dino_mmdet.pth'
    torch.save({'state_dict': dino, 'meta': {'epoch': 12}}, src)
    result = run_script('internimage_dino_to_mmdet.py', str(src), str(dst))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'converted {len(dino)} tensors: {src} -> {dst}' in result.stdout
    assert list(torch.load(dst, weights_only=True)['state_dict']) == list(convert_dino(dino))

    # each script converts its own layout only (plain DINO is not CB-DINO)
    other = tmp_path / 'other.pth'
    for script, title, keys in [
            ('internimage_mask2former_to_mmseg.py', 'Mask2Former',
             "'decode_head.*.layers.N.attentions' / 'ffns'"),
            ('internimage_cb_dino_to_mmdet.py', 'CB-DINO',
             "'bbox_head.transformer.*' and 'backbone.cb_modules.*'")]:
        result = run_script(script, str(src), str(other))
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f'error: {src} is not a reference {title} checkpoint: it has no {keys} keys '
            '(already converted, or another model?)')
        assert not other.exists()
