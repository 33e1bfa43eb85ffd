"""``configs/metafile.yml``, the one home of the published facts: OpenMMLab's
model-index reads it without an error, it has exactly one complete entry per
model-zoo config, and every config carries what its entry says (backbone
variant, pretrained backbone or fine-tuning checkpoint, optimizer, batch,
schedule, crop)."""
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
METAFILE = REPO_ROOT / 'configs' / 'metafile.yml'
ZOO_DIRS = ('coco', 'ade20k', 'coco_stuff164k')
ZOO = sorted(p for d in ZOO_DIRS for p in (REPO_ROOT / 'configs' / d).glob('*.py'))
#: Results of each collection's task: (Task, metric names).
TASKS = {
    'Mask R-CNN': [('Object Detection', {'box AP'}),
                   ('Instance Segmentation', {'mask AP'})],
    'Cascade Mask R-CNN': [('Object Detection', {'box AP'}),
                           ('Instance Segmentation', {'mask AP'})],
    'DINO': [('Object Detection', {'box AP'})],
    'UperNet': [('Semantic Segmentation', {'mIoU', 'mIoU(ms+flip)'})],
    'Mask2Former': [('Semantic Segmentation', {'mIoU', 'mIoU(ms+flip)'})],
}
DATASETS = {'coco': 'COCO', 'ade20k': 'ADE20K', 'coco_stuff164k': 'COCO-Stuff 164k'}


def raw_metafile() -> dict:
    return yaml.safe_load(METAFILE.read_text())


def test_model_index_reads_it():
    """The repository's model-index.yml imports the metafile, and
    model-index (the OpenMMLab tooling's reader) finds no error in it."""
    import modelindex
    index = modelindex.load(str(REPO_ROOT / 'model-index.yml'))
    assert index.check(silent=True) == []
    assert sorted(m.name for m in index.models) == sorted(
        m['Name'] for m in raw_metafile()['Models'])
    assert {c.name for c in index.collections} == set(TASKS)


def test_model_index_reports_a_broken_entry(tmp_path):
    """The check above can fail: an unknown collection and a result without
    its task are reported."""
    import modelindex
    raw = raw_metafile()
    raw['Models'][0]['In Collection'] = 'No Such Collection'
    del raw['Models'][1]['Results'][0]['Task']
    (tmp_path / 'metafile.yml').write_text(yaml.safe_dump(raw))
    (tmp_path / 'model-index.yml').write_text('Import:\n  - metafile.yml\n')
    errors = modelindex.load(str(tmp_path / 'model-index.yml')).check(silent=True)
    assert any('Invalid collection name `No Such Collection`' in e for e in errors)
    assert any("Field 'Task' is missing" in e for e in errors)


def test_one_entry_per_zoo_config():
    names = [m['Name'] for m in raw_metafile()['Models']]
    assert len(names) == len(set(names)), 'a Name is listed twice'
    assert set(names) == {p.stem for p in ZOO}
    for model in raw_metafile()['Models']:
        config = REPO_ROOT / model['Config']
        assert config.is_file(), f"{model['Name']}: Config {model['Config']} does not exist"
        assert config.stem == model['Name']
        assert config.parent.parent == REPO_ROOT / 'configs'


@pytest.mark.parametrize('path', ZOO, ids=[p.stem for p in ZOO])
def test_entry_is_complete(path, zoo):
    model = zoo[path.stem]
    assert model.collection in TASKS
    if model.weights is not None:
        assert model.weights.startswith('https://') and model.weights.endswith('.pth')
    # the weights start from a pretrained backbone, a published model of the
    # zoo or a detector pre-trained on another data set
    starts = [model.get('Pretrained Backbone'), model.get('Fine-tuned From'),
              model.get('Pretrained Detector')]
    assert sum(s is not None for s in starts) == 1, starts
    backbone, finetuned, detector = starts
    if backbone is not None:
        assert backbone.startswith('https://') and backbone.endswith('.pth')
    elif finetuned is not None:
        assert zoo[finetuned].weights is not None, f'{finetuned} has no Weights'
    else:
        assert detector == 'not published' or (
            detector.startswith('https://') and detector.endswith('.pth')), detector
    # results: the collection's tasks on the training data set
    dataset = DATASETS[path.parent.name]
    assert model.get('Training Data') == dataset
    raw = next(m for m in raw_metafile()['Models'] if m['Name'] == model.name)
    tasks = [(r['Task'], set(r['Metrics'])) for r in raw['Results']]
    assert tasks == TASKS[model.collection], tasks
    assert all(r['Dataset'] == dataset for r in raw['Results'])
    assert all(isinstance(v, float) and 0 < v < 100 for v in model.metrics.values())
    # sizes as published, the schedule and resources
    assert model.params_m > 0
    if model.get('FLOPs') is not None:
        assert model.flops_g > 0
    resources = model.get('Training Resources')
    # both or neither (not published)
    assert (resources is None) == (model.get('Batch Size') is None)
    if resources is not None:
        assert model.get('Batch Size') % int(resources.split('x ')[0]) == 0
    # COCO schedules in epochs (the Objects365 fine-tuning: iterations),
    # segmentation schedules in iterations
    lengths = ('Epochs', 'Iterations') if path.parent.name == 'coco' else ('Iterations', )
    assert [type(model.get(n)) for n in lengths].count(int) == 1
    assert model.get('Epochs') is None or path.parent.name == 'coco'
    assert isinstance(model.get('Learning Rate'), float)
    assert isinstance(model.get('Weight Decay'), float)


@pytest.mark.parametrize('path', ZOO, ids=[p.stem for p in ZOO])
def test_config_agrees_with_metafile(path, zoo, load_cfg):
    """What a config must carry at run time (the checkpoint it starts from,
    the optimizer, batch and schedule) is what its metafile entry says."""
    model = zoo[path.stem]
    cfg = load_cfg(path)
    backbone = cfg.model.backbone
    assert backbone.type == model.backbone_type and backbone.arch == model.variant
    init = (backbone.get('init_cfg') or {}).get('checkpoint')
    assert init == model.get('Pretrained Backbone')
    finetuned = model.get('Fine-tuned From')
    detector = model.get('Pretrained Detector')
    if finetuned:
        assert cfg.load_from == zoo[finetuned].weights
    elif detector and detector != 'not published':
        assert cfg.load_from == detector
    else:
        assert cfg.load_from is None

    ow = cfg.optim_wrapper
    assert ow.optimizer.lr == model.get('Learning Rate')
    assert ow.optimizer.weight_decay == model.get('Weight Decay')
    decay = model.get('Layer Decay')
    if decay is None:
        assert 'constructor' not in ow
    else:
        assert ow.paramwise_cfg.layer_decay_rate == decay
    clip = ow.get('clip_grad')
    assert (clip.max_norm if clip else None) == model.get('Gradient Clip')

    if model.get('Training Resources') is None:
        # the total batch is not published: the lr cannot be scaled from it
        assert not cfg.auto_scale_lr.get('enable') and 'base_batch_size' not in cfg.auto_scale_lr
    else:
        gpus = int(model.get('Training Resources').split('x ')[0])
        assert cfg.train_dataloader.batch_size * gpus == model.get('Batch Size')
        assert cfg.auto_scale_lr.base_batch_size == model.get('Batch Size')
    if model.get('Epochs') is not None:
        assert cfg.train_cfg.max_epochs == model.get('Epochs')
    else:
        assert cfg.train_cfg.max_iters == model.get('Iterations')
    if path.parent.name != 'coco':
        crop = tuple(int(s) for s in model.get('Crop Size').split('x'))
        assert tuple(cfg.model.data_preprocessor.size) == crop


def test_load_zoo_names_a_missing_field(tmp_path):
    from tests.configs.conftest import load_zoo
    raw = raw_metafile()
    del raw['Models'][3]['Metadata']['Architecture']
    broken = tmp_path / 'metafile.yml'
    broken.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=rf"model {raw['Models'][3]['Name']}: .*Architecture"):
        load_zoo(broken)
