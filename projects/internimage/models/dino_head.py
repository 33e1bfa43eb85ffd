"""The DINO head of the reference, as an mmdet 3.x head.

DINO predicts each decoder layer's boxes as offsets, in logit space, from
that layer's box references (sigmoid ``cx, cy, w, h``):
``box = sigmoid(reg_branch(query) + inverse_sigmoid(reference, eps))``,
where ``inverse_sigmoid(x, eps) = log(max(x, eps) / max(1 - x, eps))`` on
``x`` clamped to [0, 1].

The reference uses ``eps = 1e-3`` everywhere in DINO. mmdet 3.3 uses 1e-3
in the decoder's reference refinement (``DinoTransformerDecoder``) and in
the denoising queries (``CdnQueryGenerator``), but its head
(``DeformableDETRHead.forward``, which ``DINOHead`` inherits) uses the
default 1e-5. The two differ wherever a reference coordinate lies below
1e-3 or above 1 - 1e-3, i.e. for boxes touching the image border, which
real images have often: a reference at 0 gives a logit of -6.9 with 1e-3
but -11.5 with 1e-5. :class:`InternImageDINOHead` is mmdet's ``DINOHead``
with the reference's eps, so the published DINO weights give the published
predictions.
"""
from typing import Sequence, Tuple

import torch
from mmdet.models.dense_heads import DINOHead
from mmdet.models.layers import inverse_sigmoid
from mmdet.registry import MODELS
from torch import Tensor

#: The reference DINO's ``inverse_sigmoid`` eps for box references.
REFERENCE_EPS = 1e-3


@MODELS.register_module()
class InternImageDINOHead(DINOHead):
    """mmdet's ``DINOHead`` computing the box predictions as the reference does.

    Same parameters, losses and outputs as ``DINOHead``; only the
    ``inverse_sigmoid`` eps of the box references differs (see the module
    docstring).

    Args:
        reference_eps: The eps of ``inverse_sigmoid`` applied to the box
            references; default the reference's 1e-3 (mmdet's is 1e-5).
        *args, **kwargs: ``DINOHead``'s arguments.
    """

    def __init__(self, *args, reference_eps: float = REFERENCE_EPS, **kwargs) -> None:
        if not 0.0 < reference_eps < 0.5:
            raise ValueError(f'reference_eps must be in (0, 0.5), got {reference_eps!r}')
        super().__init__(*args, **kwargs)
        self.reference_eps = reference_eps

    def forward(self, hidden_states: Tensor,
                references: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Class logits and boxes of every decoder layer.

        Args:
            hidden_states: The decoder's outputs,
                ``(num_layers, batch, num_queries, embed_dims)``.
            references: ``num_layers + 1`` box references (the last one is
                not used), each ``(batch, num_queries, 4)`` sigmoid
                ``cx, cy, w, h`` (or 2 coordinates, ``cx, cy``).

        Returns:
            ``(cls_scores, bbox_preds)``: ``(num_layers, batch, num_queries,
            num_classes)`` logits and ``(num_layers, batch, num_queries, 4)``
            normalised ``cx, cy, w, h``.
        """
        if len(references) < len(hidden_states):
            raise ValueError(f'{len(hidden_states)} decoder layers need as many box '
                             f'references, got {len(references)}')
        all_cls, all_boxes = [], []
        for layer, hidden in enumerate(hidden_states):
            reference = inverse_sigmoid(references[layer], eps=self.reference_eps)
            deltas = self.reg_branches[layer](hidden)
            dims = reference.shape[-1]
            deltas = torch.cat([deltas[..., :dims] + reference, deltas[..., dims:]], dim=-1)
            all_cls.append(self.cls_branches[layer](hidden))
            all_boxes.append(deltas.sigmoid())
        return torch.stack(all_cls), torch.stack(all_boxes)


__all__ = ['InternImageDINOHead', 'REFERENCE_EPS']
