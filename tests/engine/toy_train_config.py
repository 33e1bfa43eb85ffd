"""The toy regression (tests/engine/toy.py) as a config for tools/train.py and
tools/dist_train.sh: fast exact-resume and launcher checks."""
custom_imports = dict(imports=['tests.engine.toy', 'projects.internimage.compat',
                               'projects.internimage.engine'],
                      allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(type='ToyRegressor')
train_dataloader = dict(
    dataset=dict(type='ToyNoiseDataset', length=16), batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.01))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]
train_cfg = dict(by_epoch=True, max_epochs=2)
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='RNGStateHook')]
randomness = dict(seed=0, deterministic=True)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_level = 'INFO'
