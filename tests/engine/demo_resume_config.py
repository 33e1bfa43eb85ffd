"""The Mask R-CNN demo with exact resume (``RNGStateHook``), atomic
checkpoint writes and a deterministic seed: to show on the real detector
that 1 epoch + resume 1 gives the weights of 2 epochs in one go
(``tools/dist_train.sh tests/engine/demo_resume_config.py 2``; set the data
root with ``--cfg-options``)."""
_base_ = ['../../configs/demo/mask_rcnn_internimage_demo.py']

custom_imports = dict(
    imports=['projects.internimage', 'projects.internimage.compat',
             'projects.internimage.engine', 'tests.engine.toy'],
    allow_failed_imports=False)
custom_hooks = [dict(type='RNGStateHook')]
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=-1, backend_args=dict(backend='local_atomic')))
randomness = dict(seed=0, deterministic=True, diff_rank_seed=True)
train_cfg = dict(max_epochs=2, val_interval=100)
train_dataloader = dict(dataset=dict(indices=8))
