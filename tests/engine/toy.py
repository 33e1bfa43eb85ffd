"""A tiny model and data set whose training draws from every generator.

The data set's augmentation draws from numpy's and python's global
generators, the model's dropout from torch's: a resumed run that restores
any of the three wrongly gives other weights. Registered in mmengine's root
registries, so configs of any scope build them.
"""
import random
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from torch import nn


@DATASETS.register_module(force=True)
class ToyNoiseDataset(BaseDataset):
    """``length`` fixed (x, y) pairs; each fetch adds numpy and python noise.

    Args:
        length: Number of samples.
        dim: Feature size.
    """

    def __init__(self, length: int = 16, dim: int = 4, **kwargs) -> None:
        self.length, self.dim = length, dim
        super().__init__(serialize_data=False, lazy_init=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        gen = torch.Generator().manual_seed(1234)
        x = torch.randn(self.length, self.dim, generator=gen)
        y = x.sum(1, keepdim=True) * 0.5
        return [dict(x=x[i], y=y[i]) for i in range(self.length)]

    def prepare_data(self, idx: int) -> Dict[str, torch.Tensor]:
        item = self.get_data_info(idx)
        noise = np.random.normal(size=self.dim).astype(np.float32) * 0.1
        flip = -1.0 if random.random() < 0.5 else 1.0
        return dict(inputs=item['x'] * flip + torch.from_numpy(noise), targets=item['y'] * flip)


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):
    """Linear -> dropout -> linear, trained with the mean squared error.

    Args:
        dim: Input feature size.
        hidden: Hidden width.
    """

    def __init__(self, dim: int = 4, hidden: int = 8,
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(hidden, 1))

    def forward(self, inputs, targets=None, mode: str = 'tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        out = self.net(inputs)
        if mode == 'loss':
            targets = torch.stack(targets) if isinstance(targets, (list, tuple)) else targets
            return dict(loss=((out - targets) ** 2).mean())
        return out


@HOOKS.register_module(force=True)
class StopTrainingHook(Hook):
    """Ends training after epoch / iteration ``after`` (after the checkpoint
    of that point is saved): an interruption at a known place.

    Args:
        after: Epoch (or iteration, with ``by_epoch=False``) count to stop at.
        by_epoch: Count epochs or iterations.
    """

    priority = 'LOWEST'

    def __init__(self, after: int, by_epoch: bool = True) -> None:
        self.after, self.by_epoch = after, by_epoch

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and runner.epoch + 1 >= self.after:
            runner.train_loop.stop_training = True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and runner.iter + 1 >= self.after:
            runner.train_loop.stop_training = True


@METRICS.register_module(force=True)
class ToyMSEMetric(BaseMetric):
    """Mean squared error of :class:`ToyRegressor` predictions."""

    def process(self, data_batch, data_samples) -> None:
        targets = data_batch['targets']
        targets = torch.stack(targets) if isinstance(targets, (list, tuple)) else targets
        preds = torch.stack(list(data_samples)).reshape(targets.shape)
        self.results.append(float(((preds - targets) ** 2).mean()))

    def compute_metrics(self, results) -> dict:
        return dict(mse=sum(results) / len(results))


@HOOKS.register_module(force=True)
class ReportStartHook(Hook):
    """Appends ``<pid> <iteration>`` to ``path`` when training starts (after
    any resume): where a run continued from.

    Args:
        path: The file to append to.
    """

    priority = 'LOWEST'

    def __init__(self, path: str) -> None:
        self.path = path

    def before_train(self, runner) -> None:
        import os
        with open(self.path, 'a') as f:
            f.write(f'{os.getpid()} {runner.iter}\n')
