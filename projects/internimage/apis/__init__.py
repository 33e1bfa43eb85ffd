"""What the tools do, as functions: ``tools/*.py``, ``demo/image_demo.py`` and
the converter scripts are thin argparse scripts over them.

- :mod:`.config`: loading a config (the project's fixes applied first, the
  task scope registered);
- :mod:`.runner_options`: the command-line options as config changes;
- :mod:`.runner`: the configs of training and test runs, building and
  running the Runner;
- :mod:`.distributed`: the distributed set-up, with a CPU (gloo) path;
- :mod:`.flops`: FLOP counting (the DCNv3 term, whole models);
- :mod:`.train_memory`: the peak training memory of a DINO config,
  estimated without a GPU (``benchmarks/estimate_train_memory.py``);
- :mod:`.onnx_export`: the ONNX export wrappers and their onnxruntime check;
- :mod:`.synthetic_data`: the demo's and the tests' synthetic data sets;
- :mod:`.inference`: drawing predictions on images.

The modules that need more than mmengine (onnx, the inferencers) import it
when called.
"""
from .config import SCOPES, load_config, register_scope, scope_of, set_local_rank
from .distributed import setup_distributed, teardown_distributed
from .runner import (build_runner, close_runner, config_for_testing, config_for_training,
                     run_testing, run_training)

__all__ = ['SCOPES', 'load_config', 'register_scope', 'scope_of', 'set_local_rank',
           'setup_distributed', 'teardown_distributed', 'build_runner', 'close_runner',
           'config_for_testing', 'config_for_training', 'run_testing', 'run_training']
