"""docs/checkpoints.md lists a published checkpoint (or says there is none)
for every COCO, ADE20K and COCO-Stuff config, at the model hub's address."""
import re

import pytest

from tests.helpers import REPO_ROOT

DOC = REPO_ROOT / 'docs' / 'checkpoints.md'
CONFIGS = sorted(p for d in ('coco', 'ade20k', 'coco_stuff164k')
                 for p in (REPO_ROOT / 'configs' / d).glob('*.py'))
HUB = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/'


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.stem)
def test_every_config_has_a_row(config):
    rows = [line for line in DOC.read_text().splitlines()
            if line.startswith(f'| `{config.name}` |')]
    assert len(rows) == 1, f'{config.name}: {len(rows)} rows in {DOC.name}'
    cells = [c.strip() for c in rows[0].strip('|').split('|')]
    assert re.fullmatch(r'`[\w.]+\.pth`( \(reference (DINO|CB-DINO|Mask2Former) format\))?'
                        r'|not published.*', cells[1])
    assert re.fullmatch(r'(\d\d\.\d|–) / (\d\d\.\d|–)', cells[2]), cells[2]


def test_commands_use_the_hub_address():
    text = DOC.read_text()
    assert f'`{HUB}`' in text
    for command in ('python tools/test.py configs/', 'python tools/train.py configs/'):
        assert command in text
    assert text.count(HUB) >= 3
