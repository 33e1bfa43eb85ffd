"""The DINO head of DINO + CB-InternImage (the reference's ``CBDINOHead``),
on mmdet 3.x's ``DINOHead``.

In training, ``CBDINO`` runs the transformer on the features of both
backbones of the composite at once: the batch is the assisting backbone's
images followed by the lead backbone's (the same images twice). The head
computes DINO's losses on each half with its ground truth, and weighs the
assisting half by ``cb_first_weight`` (0.5) and the lead half by 1. As in
the reference, every loss key gets the branch index appended, and a
``_w{weight}`` suffix where the weight is not 1: ``loss_cls0_w0.5``,
``d0.dn_loss_bbox0_w0.5``, ``loss_cls1``... (mmengine sums every key that
contains ``loss``, so the total is ``0.5 * assisting + lead``).

At test time only the lead backbone's features arrive (``CBChannelMapper``)
and the head predicts as :class:`~.dino_head.InternImageDINOHead` does.
"""
from typing import Dict, List

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from .dino_head import InternImageDINOHead


def branch_loss_name(key: str, branch: int, weight: float) -> str:
    """The reference's name of a branch's loss: ``{key}{branch}``, plus
    ``_w{weight}`` where the weight is not 1 and the key is a loss."""
    name = f'{key}{branch}'
    if weight != 1 and 'loss' in key:
        name = f'{name}_w{weight}'
    return name


@MODELS.register_module()
class CBDINOHead(InternImageDINOHead):
    """``InternImageDINOHead`` whose training losses cover both backbones
    of the composite, the assisting one weighted by ``cb_first_weight``.

    Same parameters and predictions as ``InternImageDINOHead``.

    Args:
        cb_first_weight: The weight of the assisting backbone's losses
            (the lead backbone's have weight 1).
        *args, **kwargs: ``InternImageDINOHead``'s arguments.
    """

    def __init__(self, *args, cb_first_weight: float = 0.5, **kwargs) -> None:
        if isinstance(cb_first_weight, bool) or not isinstance(cb_first_weight, (int, float)) \
                or cb_first_weight < 0:
            raise ValueError(f'cb_first_weight must be a number >= 0, got {cb_first_weight!r}')
        super().__init__(*args, **kwargs)
        self.cb_first_weight = cb_first_weight

    @property
    def branch_weights(self) -> List[float]:
        """The loss weight of each backbone: assisting, then lead."""
        return [self.cb_first_weight, 1]

    def loss(self, hidden_states: Tensor, references: List[Tensor],
             enc_outputs_class: Tensor, enc_outputs_coord: Tensor,
             batch_data_samples: SampleList, dn_meta: Dict[str, int]) -> dict:
        """DINO's losses on each backbone's half of the batch, weighted and
        named per backbone (see the module docstring).

        Args:
            hidden_states: The decoder's outputs, ``(num_layers, batch,
                num_queries_total, dim)``, the batch being each backbone's
                images in turn (assisting first).
            references: The decoder's box references (see ``DINOHead.loss``).
            enc_outputs_class: The encoder's top-k class scores, batch first.
            enc_outputs_coord: The encoder's top-k boxes, batch first.
            batch_data_samples: The data samples of that batch: the images'
                samples once per backbone.
            dn_meta: The denoising queries' layout (shared by the batch).

        Raises:
            ValueError: A batch that does not split into one equal part per
                backbone.
        """
        num_branches = len(self.branch_weights)
        total = len(batch_data_samples)
        if total == 0 or total % num_branches or hidden_states.shape[1] != total:
            raise ValueError(
                f'CBDINOHead: the batch must hold the images once per backbone '
                f'({num_branches}); got {total} data samples and '
                f'{hidden_states.shape[1]} decoder batch entries')
        size = total // num_branches
        cls_scores, bbox_preds = self(hidden_states, references)
        losses: Dict[str, Tensor] = {}
        for branch, weight in enumerate(self.branch_weights):
            part = slice(branch * size, (branch + 1) * size)
            samples = batch_data_samples[part]
            branch_losses = self.loss_by_feat(
                cls_scores[:, part], bbox_preds[:, part], enc_outputs_class[part],
                enc_outputs_coord[part], [s.gt_instances for s in samples],
                [s.metainfo for s in samples], dn_meta)
            for key, value in branch_losses.items():
                losses[branch_loss_name(key, branch, weight)] = (
                    [v * weight for v in value] if isinstance(value, (list, tuple))
                    else value * weight)
        return losses


__all__ = ['CBDINOHead', 'branch_loss_name']
