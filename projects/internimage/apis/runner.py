"""Building and running the Runner of ``tools/train.py`` and ``tools/test.py``.

:func:`config_for_training` and :func:`config_for_testing` turn the tools' arguments into a
config (:func:`.config.load_config`, then the options of
:mod:`.runner_options`); :func:`build_runner` is the one place where a
prepared config becomes an mmengine Runner: anything that must happen to
every run, between the command-line options and the first built module
(distributed set-up, checks of the config), belongs there. :func:`run_training` and
:func:`run_testing` run it and close what :func:`build_runner` opened.
"""
from typing import Optional

from . import runner_options
from .config import load_config
from .distributed import die_with_parent, setup_distributed, teardown_distributed

__all__ = ['config_for_training', 'config_for_testing', 'build_runner', 'close_runner',
           'run_training', 'run_testing']


def config_for_training(config: str,
                        work_dir: Optional[str] = None,
                        cfg_options: Optional[dict] = None,
                        launcher: str = 'none',
                        amp: bool = False,
                        auto_scale_lr: bool = False,
                        resume: Optional[str] = None):
    """The config of a training run (``tools/train.py``'s arguments).

    Args:
        config (str): The config file.
        work_dir (str, optional): ``--work-dir``.
        cfg_options (dict, optional): ``--cfg-options``.
        launcher (str): ``--launcher``.
        amp (bool): ``--amp`` (:func:`.runner_options.enable_amp`).
        auto_scale_lr (bool): ``--auto-scale-lr``.
        resume (str, optional): ``--resume``: ``'auto'`` or a checkpoint.

    Returns:
        mmengine.Config: The config to give :func:`run_training`.
    """
    cfg = load_config(config, cfg_options, work_dir, launcher)
    if amp:
        runner_options.enable_amp(cfg)
    if auto_scale_lr:
        runner_options.enable_auto_scale_lr(cfg)
    runner_options.set_resume(cfg, resume)
    return cfg


def config_for_testing(config: str,
                       checkpoint: str,
                       work_dir: Optional[str] = None,
                       out: Optional[str] = None,
                       show: bool = False,
                       show_dir: Optional[str] = None,
                       wait_time: float = 2,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none',
                       tta: bool = False,
                       amp: bool = False):
    """The config of a test run (``tools/test.py``'s arguments).

    Args:
        config (str): The config file.
        checkpoint (str): The checkpoint to test (``load_from``).
        work_dir (str, optional): ``--work-dir``.
        out (str, optional): ``--out`` (:func:`.runner_options.set_output`).
        show (bool): ``--show``.
        show_dir (str, optional): ``--show-dir``.
        wait_time (float): ``--wait-time``.
        cfg_options (dict, optional): ``--cfg-options``.
        launcher (str): ``--launcher``.
        tta (bool): ``--tta`` (refused here, before anything is built, for
            instance segmentation).
        amp (bool): ``--amp`` (:func:`.runner_options.enable_test_amp`).

    Returns:
        mmengine.Config: The config to give :func:`run_testing`.
    """
    cfg = load_config(config, cfg_options, work_dir, launcher)
    cfg.load_from = checkpoint
    runner_options.enable_visualization(cfg, show, show_dir, wait_time)
    if tta:
        runner_options.enable_tta(cfg)
    if amp:
        runner_options.enable_test_amp(cfg)
    runner_options.set_output(cfg, out)
    return cfg


def build_runner(cfg):
    """Prepare the distributed environment and build the Runner.

    Args:
        cfg (mmengine.Config): A config from :func:`config_for_training` or
            :func:`config_for_testing`.

    Returns:
        mmengine.runner.Runner: ``Runner.from_cfg(cfg)``, or the config's own
        ``runner_type``.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from ..models import check_neck_in_channels

    # a neck (or head) whose in_channels differ from the backbone's widths is
    # a config error: say so now, not as a shape error at the first iteration
    # (under --tta the detector or segmentor is the TTA model's `module`)
    check_neck_in_channels(cfg.model.get('module', cfg.model))
    if cfg.get('launcher', 'none') == 'pytorch':
        die_with_parent()  # a torchrun killed with SIGKILL leaves no orphan worker
    setup_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def close_runner() -> None:
    """End a run that :func:`build_runner` started: close the CPU process
    group it created, if any."""
    teardown_distributed()


def run_training(cfg) -> None:
    """Build the Runner of ``cfg`` and train.

    Args:
        cfg (mmengine.Config): A config from :func:`config_for_training`.
    """
    build_runner(cfg).train()
    close_runner()


def run_testing(cfg) -> dict:
    """Build the Runner of ``cfg`` and test.

    Args:
        cfg (mmengine.Config): A config from :func:`config_for_testing`.

    Returns:
        dict: The metrics.
    """
    metrics = build_runner(cfg).test()
    close_runner()
    return metrics
