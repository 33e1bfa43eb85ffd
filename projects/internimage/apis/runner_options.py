"""The tools' command-line options as config changes.

Each function turns one option of ``tools/train.py`` / ``tools/test.py``
(mmdet's and mmseg's arguments) into changes of a loaded config, before the
Runner is built: ``--amp``, ``--auto-scale-lr``, ``--resume``, ``--show`` /
``--show-dir``, ``--out`` and ``--tta``.
"""
import warnings
from copy import deepcopy
from typing import Optional

import torch

from .config import scope_of

__all__ = [
    'CPU_AUTOCAST_MODULES', 'enable_amp', 'enable_test_amp', 'enable_auto_scale_lr', 'set_resume',
    'enable_visualization', 'set_output', 'enable_tta',
    'check_tta_supported', 'is_instance_segmentation', 'TTA_INSTANCE_SEG_MSG'
]

#: mmdet's own message (``DetTTAModel.merge_preds``), raised here before
#: anything is built instead of after a whole model has been loaded
TTA_INSTANCE_SEG_MSG = 'TTA of instance segmentation does not support now.'

#: what runs under bfloat16 autocast for ``--amp`` on the CPU: mmcv's CPU
#: kernels used by detectors (nms, RoIAlign) take float32 only, so detectors
#: autocast their backbone and neck (outputs cast back to float32)
CPU_AUTOCAST_MODULES = {'mmdet': ['backbone', 'neck'], 'mmseg': None}

#: mmdet detectors that predict instance masks without a ``mask_head`` key
_MASK_DETECTORS = ('SOLO', 'SOLOv2', 'CondInst', 'BoxInst', 'MaskFormer',
                   'Mask2Former', 'SparseInst', 'RTMDetIns')


def enable_amp(cfg) -> None:
    """``--amp`` for training: automatic mixed precision.

    With CUDA, the optimizer wrapper becomes mmengine's ``AmpOptimWrapper``
    (float16, dynamic loss scale), as in mmdet and mmseg. Without CUDA it
    becomes ``CPUAmpOptimWrapper`` (``projects.internimage.engine``): the forward
    pass runs under bfloat16 autocast on the CPU (for detectors: the backbone
    and neck, see ``CPU_AUTOCAST_MODULES``), with no loss scaling.

    Args:
        cfg (mmengine.Config): The config to change.

    Raises:
        ValueError: If ``optim_wrapper.type`` is another custom wrapper.
    """
    from mmengine.logging import print_log
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if torch.cuda.is_available():
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current')
            return
        if wrapper != 'OptimWrapper':
            raise ValueError('--amp needs optim_wrapper.type to be '
                             f"'OptimWrapper', got {wrapper!r}")
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
        return
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper',
                       'CPUAmpOptimWrapper'):
        raise ValueError('--amp needs optim_wrapper.type to be '
                         f"'OptimWrapper', got {wrapper!r}")
    cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
    for key in ('loss_scale', 'dtype'):  # float16 settings of AmpOptimWrapper
        cfg.optim_wrapper.pop(key, None)
    modules = CPU_AUTOCAST_MODULES[scope_of(cfg)]
    cfg.optim_wrapper.autocast_modules = modules
    print_log('--amp without CUDA: bfloat16 autocast on the CPU '
              f'(CPUAmpOptimWrapper, autocast_modules={modules})',
              logger='current')


def enable_test_amp(cfg) -> None:
    """``--amp`` for testing: run the test loop under autocast.

    Where the whole model can run in it (with CUDA: float16; on the CPU,
    segmentors: bfloat16), mmengine's ``TestLoop(fp16=True)``, which
    autocasts each test step. Detectors on the CPU autocast only their
    backbone and neck (``CPU_AUTOCAST_MODULES``: mmcv's CPU nms / RoIAlign
    take float32 only), through ``CPUAutocastHook`` (``projects.internimage.engine``).

    Args:
        cfg (mmengine.Config): The config to change.

    Raises:
        ValueError: If the whole model runs under autocast and the config's
            ``test_cfg`` is not mmengine's TestLoop.
    """
    modules = CPU_AUTOCAST_MODULES[scope_of(cfg)]
    if torch.cuda.is_available() or modules is None:
        test_cfg = cfg.get('test_cfg', None) or dict(type='TestLoop')
        loop = test_cfg.get('type', 'TestLoop')
        if loop != 'TestLoop':
            raise ValueError(
                f"--amp needs test_cfg.type='TestLoop', got {loop!r}")
        test_cfg['fp16'] = True
        cfg.test_cfg = test_cfg
        return
    hooks = [h for h in cfg.get('custom_hooks', None) or []
             if h.get('type') != 'CPUAutocastHook']
    cfg.custom_hooks = hooks + [
        dict(type='CPUAutocastHook', modules=modules)
    ]


def enable_auto_scale_lr(cfg) -> None:
    """``--auto-scale-lr``: scale the lr by the total batch size /
    ``auto_scale_lr.base_batch_size``.

    Args:
        cfg (mmengine.Config): The config to change.

    Raises:
        ValueError: If the config has no ``auto_scale_lr.base_batch_size``.
    """
    if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
        raise ValueError('--auto-scale-lr needs auto_scale_lr.'
                         'base_batch_size in the config')
    cfg.auto_scale_lr.enable = True


def set_resume(cfg, resume: Optional[str]) -> None:
    """mmdet-style ``--resume``.

    Args:
        cfg (mmengine.Config): The config to change.
        resume (str, optional): ``'auto'`` resumes from the latest checkpoint
            of the work dir, a path from that checkpoint, None not at all.
    """
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume


def enable_visualization(cfg,
                         show: bool = False,
                         show_dir: Optional[str] = None,
                         wait_time: float = 2) -> None:
    """``--show`` / ``--show-dir``: make the task's visualisation hook draw
    the test results.

    Args:
        cfg (mmengine.Config): The config to change.
        show (bool): Show the pictures in a window.
        show_dir (str, optional): Save the pictures there (mmdet: under the
            run's timestamped folder of the work dir, mmseg: in it).
        wait_time (float): Seconds each picture is shown.

    Raises:
        ValueError: If the config has no ``default_hooks.visualization``.
    """
    if not (show or show_dir):
        return
    hook = cfg.default_hooks.get('visualization', None)
    if hook is None:
        raise ValueError('--show / --show-dir need '
                         'default_hooks.visualization in the config')
    hook['draw'] = True
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if show_dir:
        if scope_of(cfg) == 'mmdet':
            hook['test_out_dir'] = show_dir
        else:
            cfg.visualizer['save_dir'] = show_dir


def set_output(cfg, out: Optional[str]) -> None:
    """``--out``: mmdet dumps the raw predictions to a .pkl file, mmseg
    writes the predicted label maps as PNGs to a directory.

    Args:
        cfg (mmengine.Config): The config to change.
        out (str, optional): The .pkl file (detection) or directory
            (segmentation).

    Raises:
        ValueError: If a detection ``out`` is not a .pkl/.pickle file.
    """
    if out is None:
        return
    if scope_of(cfg) == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(
                f'--out must be a .pkl file for detection, got {out!r}')
        dump = dict(type='DumpDetResults', out_file_path=out)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (list(evaluator) + [dump] if isinstance(
            evaluator, (list, tuple)) else [evaluator, dump])
    else:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True


def is_instance_segmentation(model_cfg) -> bool:
    """Whether a detector config predicts instance masks.

    Args:
        model_cfg (dict): The config's ``model``.

    Returns:
        bool: True for models with a ``mask_head`` anywhere (Mask R-CNN,
        Cascade Mask R-CNN, HTC, ...) and for mask detectors without one
        (SOLO, CondInst, Mask2Former, ...).
    """
    def has_mask_head(node) -> bool:
        if isinstance(node, dict):
            if node.get('mask_head', None) is not None:
                return True
            if node.get('type', None) in _MASK_DETECTORS:
                return True
            return any(has_mask_head(v) for v in node.values())
        if isinstance(node, (list, tuple)):
            return any(has_mask_head(v) for v in node)
        return False

    return has_mask_head(model_cfg)


def check_tta_supported(cfg) -> None:
    """Refuse ``--tta`` where the task's TTA model cannot merge the results.

    mmdet's ``DetTTAModel`` merges boxes only; for instance segmentation it
    fails after the model has been built and the data loaded. Fail first.

    Args:
        cfg (mmengine.Config): The config.

    Raises:
        NotImplementedError: With mmdet's message, for instance-segmentation
            detectors.
    """
    if scope_of(cfg) == 'mmdet' and is_instance_segmentation(cfg.model):
        raise NotImplementedError(
            f'{TTA_INSTANCE_SEG_MSG} (--tta: mmdet merges only boxes; '
            f'{cfg.model.get("type", "this model")} predicts masks; test '
            'without --tta)')


def enable_tta(cfg) -> None:
    """``--tta``: wrap the model in the task's TTA model and test with
    ``tta_pipeline``.

    For detection, mmdet's defaults apply when the config has none
    (``DetTTAModel``, flip TTA); segmentation configs must give both
    ``tta_model`` and ``tta_pipeline``.

    Args:
        cfg (mmengine.Config): The config to change.

    Raises:
        NotImplementedError: For instance segmentation (see
            :func:`check_tta_supported`).
        ValueError: For a segmentation config without ``tta_model`` or
            ``tta_pipeline``.
    """
    check_tta_supported(cfg)
    if scope_of(cfg) == 'mmdet':
        if 'tta_model' not in cfg:
            warnings.warn('no tta_model in the config: using DetTTAModel')
            cfg.tta_model = dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5),
                    max_per_img=100))
        if 'tta_pipeline' not in cfg:
            warnings.warn('no tta_pipeline in the config: using flip TTA')
            data = cfg.test_dataloader.dataset
            while 'dataset' in data:
                data = data['dataset']
            pipeline = deepcopy(data.pipeline)
            pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ], [
                    dict(
                        type='PackDetInputs',
                        meta_keys=('img_id', 'img_path', 'ori_shape',
                                   'img_shape', 'scale_factor', 'flip',
                                   'flip_direction'))
                ]])
            cfg.tta_pipeline = pipeline
    elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ValueError('--tta needs tta_model and tta_pipeline in the '
                         'config')
    cfg.model = dict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
