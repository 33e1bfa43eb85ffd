"""The backbone and the optimizer constructor through the OpenMMLab registries."""
import pytest
import torch

from tests.helpers import TINY


def tiny_cfg(**kwargs) -> dict:
    return dict(type='InternImage', core_op='DCNv3_pytorch', **TINY, **kwargs)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_build_from_config_in_both_registries(scope):
    from mmengine.utils import import_modules_from_strings
    registry = pytest.importorskip(f'{scope}.registry').MODELS
    # What a config's custom_imports=dict(imports=['projects.internimage']) does.
    import_modules_from_strings(['projects.internimage'])
    from projects.internimage import InternImage
    model = registry.build(tiny_cfg(out_indices=(1, 2)))
    assert type(model) is InternImage
    outs = model.eval()(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [32, 64]


@pytest.mark.parametrize('name', ['InternImage', 'CBInternImage'])
def test_registered_once_in_mmengines_root_registry(name):
    """One registration of each backbone (``@MODELS.register_module()``); the
    mmdet and mmseg registries find it through their parent, mmengine's root
    registry."""
    import projects.internimage as pkg
    from mmengine.registry import MODELS
    assert MODELS.module_dict[name] is getattr(pkg, name)
    for scope in ('mmdet', 'mmseg'):
        registry = pytest.importorskip(f'{scope}.registry').MODELS
        assert name not in registry.module_dict
        assert registry.get(name) is getattr(pkg, name)


def test_cb_dino_parts_are_in_mmdets_registry():
    """DINO + CB-InternImage's detector, neck and head are mmdet modules
    (registered in mmdet's MODELS, as InternImageDINOHead), not in the root."""
    from mmdet.registry import MODELS as MMDET
    from mmengine.registry import MODELS

    from projects.internimage.models import cb_dino
    for name in ('CBDINO', 'CBDINOHead', 'CBChannelMapper', 'InternImageDINOHead'):
        assert MMDET.module_dict[name] is MMDET.get(name)
        assert name not in MODELS.module_dict
    assert MMDET.get('CBDINO') is cb_dino.CBDINO


def test_build_with_default_scope():
    from mmengine.registry import DefaultScope
    from mmdet.registry import MODELS
    import projects.internimage  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(tiny_cfg(frozen_stages=1))
    assert model.frozen_stages == 1


def test_optimizer_constructor_from_downstream_scopes():
    import projects.internimage as pkg
    from mmengine.registry import DefaultScope
    from mmengine.optim import build_optim_wrapper
    for scope in ('mmdet', 'mmseg'):
        registry = pytest.importorskip(f'{scope}.registry').OPTIM_WRAPPER_CONSTRUCTORS
        for name in ('InternImageLayerDecayOptimizerConstructor',
                     'CustomLayerDecayOptimizerConstructor'):
            assert registry.get(name) is pkg.InternImageLayerDecayOptimizerConstructor
        # mmseg's own constructors are untouched.
        if scope == 'mmseg':
            import mmseg.engine  # noqa: F401
            assert registry.get('LayerDecayOptimizerConstructor') is not \
                pkg.InternImageLayerDecayOptimizerConstructor
        model = torch.nn.Module()
        model.backbone = pkg.InternImage(core_op='DCNv3_pytorch', **TINY)
        with DefaultScope.overwrite_default_scope(scope):
            wrapper = build_optim_wrapper(model, dict(
                optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
                constructor='InternImageLayerDecayOptimizerConstructor',
                paramwise_cfg=dict(num_layers=5, layer_decay_rate=0.9, depths=[1, 1, 2, 1])))
        assert {g['layer_id'] for g in wrapper.optimizer.param_groups} == set(range(7)) - {6}
