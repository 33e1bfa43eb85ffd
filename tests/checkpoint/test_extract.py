"""tools/model_converters/extract_backbone.py and its body
(projects/internimage/checkpoint/extract.py): a backbone checkpoint cut out
of a trained model's, which the backbone then loads through init_cfg
Pretrained."""
import subprocess
import sys

import pytest
import torch

from projects.internimage import InternImage
from projects.internimage.checkpoint import InvalidCheckpointError, extract_backbone
from projects.internimage.checkpoint.extract import backbone_weights, main
from tests.helpers import REPO_ROOT

SCRIPT = REPO_ROOT / 'tools' / 'model_converters' / 'extract_backbone.py'
#: the demo's backbone
SETTINGS = dict(arch='t', channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])


@pytest.fixture(scope='module')
def model_checkpoint(tmp_path_factory):
    """What tools/train.py writes for a model with this backbone: the whole
    model's weights, an optimizer state and mmengine's meta."""
    torch.manual_seed(0)
    backbone = InternImage(**SETTINGS)
    head = torch.nn.Conv2d(128, 5, 1)
    weights = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    weights.update({f'decode_head.conv_seg.{k}': v for k, v in head.state_dict().items()})
    path = tmp_path_factory.mktemp('extract') / 'iter_300.pth'
    torch.save(dict(state_dict=weights,
                    optimizer=dict(state={0: dict(step=torch.tensor(3.))}),
                    meta=dict(iter=300, epoch=0, seed=0, cfg='model = dict(...)',
                              dataset_meta=dict(classes=['a', 'b']))), path)
    return path, backbone.state_dict()


def test_extract_then_load_as_pretrained(model_checkpoint, tmp_path):
    """The output holds exactly the backbone's tensors without their prefix
    (equal to the model's), the source's name and progress; a backbone
    built with init_cfg Pretrained on it gets those weights."""
    src, expected = model_checkpoint
    dst = tmp_path / 'sub' / 'backbone.pth'
    assert extract_backbone(str(src), str(dst)) == len(expected)
    out = torch.load(dst, weights_only=True)
    assert set(out) == {'state_dict', 'meta'}
    assert list(out['state_dict']) == list(expected)
    for key, value in expected.items():
        assert torch.equal(out['state_dict'][key], value), key
    assert out['meta'] == dict(source='iter_300.pth', prefix='backbone.', iter=300, epoch=0,
                               seed=0)

    torch.manual_seed(1)  # other random weights than the checkpoint's
    loaded = InternImage(**SETTINGS, init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    loaded.init_weights()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_ddp_prefix_and_other_prefixes():
    weights = {'module.backbone.a': torch.zeros(1), 'module.neck.b': torch.ones(1),
               'backbone.meta_info': 'not a tensor'}
    assert list(backbone_weights(weights)) == ['a']
    assert list(backbone_weights(weights, prefix='neck.')) == ['b']


def test_bad_input(model_checkpoint, tmp_path):
    src, _ = model_checkpoint
    with pytest.raises(ValueError, match=r"iter_300.pth: no weights start with 'encoder.'; "
                       r'its keys begin with: backbone\.'):
        extract_backbone(str(src), str(tmp_path / 'out.pth'), prefix='encoder.')
    with pytest.raises(ValueError, match='prefix must not be empty'):
        extract_backbone(str(src), str(tmp_path / 'out.pth'), prefix='')
    with pytest.raises(ValueError, match='another file than the input'):
        extract_backbone(str(src), str(src))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        extract_backbone(str(tmp_path / 'missing.pth'), str(tmp_path / 'out.pth'))
    nan = tmp_path / 'nan.pth'
    torch.save({'state_dict': {'backbone.w': torch.tensor([float('nan')])}}, nan)
    with pytest.raises(InvalidCheckpointError, match=r'NaN or inf in 1 tensor\(s\): w'):
        extract_backbone(str(nan), str(tmp_path / 'out.pth'))
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match='a checkpoint must be a dict, got list'):
        extract_backbone(str(listed), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_script(model_checkpoint, tmp_path):
    src, expected = model_checkpoint
    dst = tmp_path / 'backbone.pth'
    result = subprocess.run([sys.executable, str(SCRIPT), str(src), str(dst)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'wrote {len(expected)} backbone tensors' in result.stdout
    assert dst.is_file()
    # the command line's errors (in this process: the script is main())
    with pytest.raises(SystemExit, match="^error: .*no weights start with 'x.'"):
        main([str(src), str(dst), '--prefix', 'x.'])


def test_shipped_demo_backbone():
    """demo/pretrained/internimage_demo_backbone.pth, which both demo configs
    start from: a small file, the sha256 its README states, written by
    extract_backbone from the last iteration of the pre-training config; the
    backbones of both demo configs, built with their init_cfg Pretrained,
    get every one of its tensors."""
    import hashlib

    from projects.internimage.apis import load_config
    folder = REPO_ROOT / 'demo' / 'pretrained'
    path = folder / 'internimage_demo_backbone.pth'
    assert path.stat().st_size < 4 * 2**20
    assert hashlib.sha256(path.read_bytes()).hexdigest() in (folder / 'README.md').read_text()
    shipped = torch.load(path, weights_only=True)
    pretrain = load_config(str(REPO_ROOT / 'configs' / 'demo' /
                               'upernet_internimage_demo_pretrain.py'))
    assert shipped['meta']['iter'] == pretrain.train_cfg.max_iters
    assert shipped['meta']['prefix'] == 'backbone.'
    for name in ('mask_rcnn_internimage_demo.py', 'upernet_internimage_demo.py'):
        bb = load_config(str(REPO_ROOT / 'configs' / 'demo' / name)).model.backbone
        assert bb.init_cfg.type == 'Pretrained'
        assert bb.init_cfg.checkpoint.endswith('demo/pretrained/internimage_demo_backbone.pth')
        assert bb.channels == SETTINGS['channels'] and list(bb.depths) == SETTINGS['depths']
        torch.manual_seed(1)
        backbone = InternImage(**{k: v for k, v in bb.items() if k != 'type'})
        backbone.init_weights()
        state = backbone.state_dict()
        assert set(state) == set(shipped['state_dict']), name
        for key, value in shipped['state_dict'].items():
            assert torch.equal(state[key], value), (name, key)
