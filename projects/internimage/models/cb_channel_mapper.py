"""The channel mapper of DINO + CB-InternImage (the reference's
``CBChannelMapper``), registered in mmdet's ``MODELS``."""
from typing import List, Sequence, Tuple, Union

from mmdet.models.necks import ChannelMapper
from mmdet.registry import MODELS
from torch import Tensor

Features = Tuple[Tensor, ...]


@MODELS.register_module()
class CBChannelMapper(ChannelMapper):
    """mmdet's ``ChannelMapper`` over the outputs of a composite backbone.

    The composite backbone (``CBInternImage``) returns one tuple of feature
    maps per backbone. In training every backbone's tuple goes through the
    same convs (``CBDINO`` computes the detection losses on each); at test
    time only the backbone ``cb_idx`` (the lead one) is mapped. A single
    tuple of tensors (a plain backbone) is mapped as ``ChannelMapper`` does.
    Same parameters as ``ChannelMapper``.

    Args:
        cb_idx: The backbone whose features are used at test time.
        **kwargs: ``ChannelMapper``'s arguments.
    """

    def __init__(self, cb_idx: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cb_idx = cb_idx

    def forward(self, inputs: Union[Features, Sequence[Features]]
                ) -> Union[Features, List[Features]]:
        """Map one tuple of features, or (composite) each backbone's tuple
        in training and tuple ``cb_idx`` at test time.

        Raises:
            ValueError: ``cb_idx`` is not one of the backbones.
        """
        if not isinstance(inputs[0], (list, tuple)):
            return super().forward(inputs)
        if self.training:
            return [ChannelMapper.forward(self, tuple(feats)) for feats in inputs]
        if not -len(inputs) <= self.cb_idx < len(inputs):
            raise ValueError(f'CBChannelMapper: cb_idx={self.cb_idx} but the backbone '
                             f'gives {len(inputs)} feature tuples')
        return super().forward(tuple(inputs[self.cb_idx]))


__all__ = ['CBChannelMapper']
