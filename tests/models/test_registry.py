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


def test_registered_once_in_mmengines_root_registry():
    """One registration (``@MODELS.register_module()``); the mmdet and mmseg
    registries find it through their parent, mmengine's root registry."""
    from mmengine.registry import MODELS
    from projects.internimage import InternImage
    assert MODELS.module_dict['InternImage'] is InternImage
    for scope in ('mmdet', 'mmseg'):
        registry = pytest.importorskip(f'{scope}.registry').MODELS
        assert 'InternImage' not in registry.module_dict
        assert registry.get('InternImage') is InternImage


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
