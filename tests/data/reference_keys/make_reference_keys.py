"""Write ``reference_keys.json``: the state-dict keys and shapes of the
reference's tiny DINO-H and DINO + CB-InternImage-H models, for the
key-for-key conversion tests (``tests/checkpoint/test_cb_dino_converter.py``).

Run from the repository root: ``python tests/data/reference_keys/make_reference_keys.py``.
It reads only files of this repository, the goldens the reference code wrote
(``tests/data/golden``), and adds the composite's structure as the
reference's ``detection/mmdet_custom/models/backbones/cbnet.py`` builds it
(read from its source; see README.md):

- ``backbone``: the reference InternImage-H tiny backbone's keys
  (``backbone_bb_tiny_h.pt``: channels 16, depths 1-1-3-1, groups 1-2-4-8,
  the H flags) under ``backbone.`` (DINO-H), or twice under
  ``backbone.cb_modules.0.`` / ``backbone.cb_modules.1.`` (CB), the second
  without ``patch_embed.*`` (``del_layers``) and with its own parameters
  ``gamma0..3`` (zeros of the stage widths) first;
- ``backbone.cb_linears.i.j.{weight,bias}`` for stage ``i`` and ``j`` in
  ``1 .. 3 - i`` (``j = 0`` is ``nn.Identity``): 1x1 convs from width
  ``16 * 2**(i + j)`` to ``16 * 2**i``;
- the neck and head: the reference's tiny DINO (``models/dino_tiny.pt``,
  ``legacy_keys``: ChannelMapper of 32-64-128 into 32 channels, 4 levels,
  2 + 2 transformer layers, 50 queries); for CB the neck is a one-element
  list, an ``nn.Sequential`` in mmdet 2.x: ``neck.0.*``.
"""
import json
import os.path as osp
from typing import List, Tuple

import torch

HERE = osp.dirname(osp.abspath(__file__))
GOLDEN = osp.join(HERE, '..', 'golden')

Keys = List[Tuple[str, List[int]]]


def _load(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def main() -> None:
    backbone = _load(osp.join(GOLDEN, 'backbone_bb_tiny_h.pt'))
    dino = _load(osp.join(GOLDEN, 'models', 'dino_tiny.pt'))
    bb: Keys = [(k, list(v.shape)) for k, v in backbone['state_dict'].items()]
    head: Keys = [(k, list(dino['state_dict'][k].shape)) for k in dino['legacy_keys']
                  if not k.startswith('backbone.')]
    channels = backbone['kwargs']['channels']
    widths = [channels * 2**i for i in range(4)]

    dino_h = [('backbone.' + k, s) for k, s in bb] + head
    cb: Keys = [('backbone.cb_modules.0.' + k, s) for k, s in bb]
    cb += [(f'backbone.cb_modules.1.gamma{i}', [widths[i]]) for i in range(4)]
    cb += [('backbone.cb_modules.1.' + k, s) for k, s in bb
           if not k.startswith('patch_embed.')]
    for i in range(4):
        for j in range(1, 4 - i):
            cb.append((f'backbone.cb_linears.{i}.{j}.weight',
                       [widths[i], widths[i + j], 1, 1]))
            cb.append((f'backbone.cb_linears.{i}.{j}.bias', [widths[i]]))
    cb += [('neck.0.' + k[len('neck.'):], s) if k.startswith('neck.') else (k, s)
           for k, s in head]

    data = dict(
        note=('State-dict keys and shapes of the reference tiny DINO-H and CB-DINO-H '
              '(see make_reference_keys.py and README.md).'),
        backbone=dict(backbone['kwargs']),
        reference_commit=dino['reference_commit'],
        dino_h=[[k, s] for k, s in dino_h],
        cb_dino_h=[[k, s] for k, s in cb])
    lines = ['{']
    for name, value in data.items():
        if isinstance(value, list):  # one key per line
            rows = ',\n'.join('  ' + json.dumps(row) for row in value)
            lines.append(f'{json.dumps(name)}: [\n{rows}\n],')
        else:
            lines.append(f'{json.dumps(name)}: {json.dumps(value)},')
    lines[-1] = lines[-1].rstrip(',')
    with open(osp.join(HERE, 'reference_keys.json'), 'w') as f:
        f.write('\n'.join(lines + ['}']) + '\n')
    print(f'wrote {len(dino_h)} DINO-H and {len(cb)} CB-DINO-H keys')


if __name__ == '__main__':
    main()
