"""``--cfg-options`` values that do not convert to the config's type name
the key (the real tool parses them with mmengine's DictAction)."""
import argparse
import os
import subprocess
import sys

import pytest
from mmengine.config import DictAction

from projects.internimage.apis import load_config
from tests.helpers import REPO_ROOT

CFG = str(REPO_ROOT / 'configs' / 'demo' / 'mask_rcnn_internimage_demo.py')


def parse(*pairs: str) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *pairs]).cfg_options


@pytest.mark.parametrize('pair, message', [
    ('train_cfg.max_epochs=1O', "--cfg-options train_cfg.max_epochs='1O': the config has an "
     "int there (6), and '1O' does not convert to one"),
    ('train_cfg.max_epochs=2.5', 'train_cfg.max_epochs=2.5: the config has an int there'),
    ('optim_wrapper.optimizer.lr=1e-3x', "optim_wrapper.optimizer.lr='1e-3x': the config has a "
     'number there'),
    ('train_dataloader.persistent_workers=yes', "train_dataloader.persistent_workers='yes': the "
     'config has a bool there'),
    ('default_hooks.checkpoint.interval=x', "default_hooks.checkpoint.interval='x': the config "
     'has an int there'),
])
def test_a_value_that_does_not_convert_names_the_key(pair, message):
    with pytest.raises(ValueError) as info:
        load_config(CFG, parse(pair))
    assert message in str(info.value)


def test_values_that_convert_are_merged():
    cfg = load_config(CFG, parse('train_cfg.max_epochs=3', 'optim_wrapper.optimizer.lr=1',
                                 'train_dataloader.persistent_workers=True', 'new_key=anything',
                                 'work_dir=/tmp/x', 'custom_hooks.1.max_dropped=0.1'))
    assert cfg.train_cfg.max_epochs == 3 and cfg.optim_wrapper.optimizer.lr == 1
    assert cfg.train_dataloader.persistent_workers is True and cfg.new_key == 'anything'
    assert cfg.custom_hooks[1].max_dropped == 0.1  # a key the config lacks: any value


def test_through_the_tool(tmp_path):
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), CFG,
                           '--work-dir', str(tmp_path), '--cfg-options',
                           'train_cfg.max_epochs=abc'], cwd=tmp_path, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode != 0
    assert "ValueError: --cfg-options train_cfg.max_epochs='abc': the config has an int " \
        'there' in proc.stdout, proc.stdout[-2000:]
