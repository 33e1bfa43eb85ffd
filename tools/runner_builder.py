"""Building the Runner of ``tools/train.py`` and ``tools/test.py`` (a helper
module of ``tools/``, not a script).

:func:`build_runner` is the one place where the tools turn a prepared config
into an mmengine Runner: anything that must happen to every run, between the
command-line options and the first built module (distributed set-up, hooks
every run needs, checks of the config), belongs here.
"""
from __future__ import annotations

from distributed_setup import setup_distributed, teardown_distributed

__all__ = ['build_runner', 'close_runner']


def build_runner(cfg):
    """Prepare the distributed environment and build the Runner.

    Args:
        cfg (mmengine.Config): A config from ``config_loader.load_config``
            with the command-line options applied (``runner_options``).

    Returns:
        mmengine.runner.Runner: ``Runner.from_cfg(cfg)``, or the config's own
        ``runner_type``.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from projects.internimage import check_neck_in_channels

    # a neck (or head) whose in_channels differ from the backbone's widths is
    # a config error: say so now, not as a shape error at the first iteration
    # (under --tta the detector or segmentor is the TTA model's `module`)
    check_neck_in_channels(cfg.model.get('module', cfg.model))
    setup_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def close_runner() -> None:
    """End a run that :func:`build_runner` started: close the CPU process
    group it created, if any."""
    teardown_distributed()
