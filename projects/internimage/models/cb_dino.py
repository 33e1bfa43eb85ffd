"""DINO + CB-InternImage on mmdet 3.x: the detector ``CBDINO`` (the
reference's), registered in mmdet's ``MODELS`` (the composite backbone
``CBInternImage`` is in mmengine's root ``MODELS``, as ``InternImage``).

Training (as the reference's ``CBDINO``): the composite backbone returns
the assisting and the lead backbone's features, ``CBChannelMapper`` maps
both, and the transformer runs once on the two concatenated along the batch
(assisting images first, then lead), with each image's ground truth and
denoising queries twice; ``CBDINOHead`` weighs the assisting half's losses
by 0.5. Testing: only the lead backbone's features reach the transformer,
so prediction, TTA and FLOP counting are plain DINO's.
"""
from typing import Dict, Sequence, Union

import torch
from mmdet.models.detectors import DINO
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from .cb_channel_mapper import CBChannelMapper  # noqa: F401  (registers it)
from .cb_dino_head import CBDINOHead


@MODELS.register_module()
class CBDINO(DINO):
    """mmdet's ``DINO`` trained on both backbones of a composite backbone.

    Same parameters and predictions as ``DINO``; its head must be a
    :class:`~.cb_dino_head.CBDINOHead` and, in training, its neck must
    return one tuple of features per backbone
    (:class:`~.cb_channel_mapper.CBChannelMapper` after
    :class:`~.cb_internimage.CBInternImage`).

    Args:
        rule: the reference's parameter-freezing rules; only None (train
            everything, the published recipe) exists.
        *args, **kwargs: ``DINO``'s arguments.

    Raises:
        ValueError: another head type, or a ``rule``.
    """

    def __init__(self, *args, rule: None = None, **kwargs) -> None:
        if rule is not None:
            raise ValueError(f"CBDINO: rule={rule!r} is not supported (the reference's "
                             'freezing rules; the published recipe trains everything)')
        super().__init__(*args, **kwargs)
        if not isinstance(self.bbox_head, CBDINOHead):
            raise ValueError(f'CBDINO needs bbox_head type CBDINOHead, got '
                             f'{type(self.bbox_head).__name__}')

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Union[dict, list]:
        """The detection losses of both backbones (see the module docstring).

        Args:
            batch_inputs: The images, ``(N, 3, H, W)``.
            batch_data_samples: Their data samples (ground truth).

        Returns:
            The losses, named and weighted per backbone by ``CBDINOHead``.

        Raises:
            ValueError: The neck did not give one tuple of features per
                backbone.
        """
        feats = self.extract_feat(batch_inputs)
        if not (isinstance(feats, Sequence) and feats
                and all(isinstance(f, Sequence) and not isinstance(f, Tensor)
                        for f in feats)):
            raise ValueError('CBDINO needs one tuple of features per backbone in training: '
                             'a CBInternImage backbone and a CBChannelMapper neck')
        if len({len(f) for f in feats}) != 1:
            raise ValueError(f'CBDINO: the backbones gave different numbers of feature '
                             f'levels: {[len(f) for f in feats]}')
        img_feats = tuple(torch.cat(level, dim=0) for level in zip(*feats))
        samples = list(batch_data_samples) * len(feats)
        head_inputs_dict: Dict = self.forward_transformer(img_feats, samples)
        return self.bbox_head.loss(**head_inputs_dict, batch_data_samples=samples)


__all__ = ['CBDINO', 'CBDINOHead', 'CBChannelMapper']
