"""Token-level feature consistency alignment (TFCA, CORA §3.2.2, Eq. 8).

The projected ``[SEG]`` token of an unlabeled query is the anchor; the token bank holds
projected ``[SEG]`` tokens of labeled queries with their classes. Every bank token of the
anchor's class is a positive, every token of another class a negative, and each (anchor,
positive) pair contributes SimCLR's / InfoNCE's term with cosine similarity and temperature τ::

    l(v, k+) = -log( exp(s(v,k+)/τ) / (exp(s(v,k+)/τ) + Σ_{k-} exp(s(v,k-)/τ)) )

Eq. 8 sums over the pairs; we average over them (``reduction='mean'``, default), so the loss
does not grow with the bank's size and σ (Eq. 9) means the same for any bank; ``'sum'`` is
Eq. 8 as written.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class TokenContrastiveLoss(nn.Module):
    """InfoNCE between unlabeled ``[SEG]`` tokens and a bank of labeled ones (Eq. 8).

    An anchor without a positive in the bank, or without a negative, has no term (early in
    training the bank may lack its class). With no term at all the loss is a zero that is still
    connected to the anchors' graph.

    Args:
        temperature (float): τ (GLUS and CORA: 0.07).
        reduction (str): ``'mean'`` over (anchor, positive) pairs or ``'sum'`` (Eq. 8 as written).
        loss_weight (float): Multiplier.
        loss_name (str): Key in the loss dict.
    """

    def __init__(self,
                 temperature: float = 0.07,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_token') -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.temperature, self.reduction, self.loss_weight = temperature, reduction, loss_weight
        self._loss_name = loss_name

    def forward(self, anchors: torch.Tensor, anchor_classes: torch.Tensor,
                bank_tokens: torch.Tensor, bank_classes: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            anchors (Tensor): (N, D) unlabeled tokens (with gradient).
            anchor_classes (Tensor): (N,) their (pseudo-label) classes.
            bank_tokens (Tensor): (M, D) labeled tokens (detached).
            bank_classes (Tensor): (M,) their classes.

        Returns:
            A float32 scalar.
        """
        if anchors.ndim != 2 or bank_tokens.ndim != 2 or (len(bank_tokens) and bank_tokens.shape[1]
                                                          != anchors.shape[1]):
            raise ValueError(f'anchors {tuple(anchors.shape)} and bank {tuple(bank_tokens.shape)}'
                             ' must be (N, D) and (M, D)')
        zero = anchors.float().sum() * 0.
        if not len(anchors) or not len(bank_tokens):
            return zero
        # yapf: disable  (yapf splits the matrix product inside its operands)
        sim = F.normalize(anchors.float(), dim=1) @ F.normalize(
            bank_tokens.detach().float(), dim=1).T / self.temperature          # (N, M)
        # yapf: enable
        positive = anchor_classes.view(-1, 1) == bank_classes.view(1, -1)  # (N, M)
        negative = ~positive
        # log Σ_{k-} exp(s-) per anchor; -inf where an anchor has no negative
        neg_lse = torch.logsumexp(sim.masked_fill(positive, float('-inf')), dim=1, keepdim=True)
        # l = -s+ + log(exp(s+) + Σ exp(s-)) = -s+ + logaddexp(s+, neg_lse)
        terms = torch.logaddexp(sim, neg_lse.expand_as(sim)) - sim
        usable = positive & negative.any(dim=1, keepdim=True)
        if not bool(usable.any()):
            return zero
        total = terms[usable].sum()
        if self.reduction == 'mean':
            total = total / usable.sum()
        return self.loss_weight * total + zero

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict (mmseg's convention)."""
        return self._loss_name
