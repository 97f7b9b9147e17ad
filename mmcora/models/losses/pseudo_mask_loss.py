"""CORA's loss on unlabeled images: BCE + Dice against a pseudo-mask, weighted per pixel.

The weight of pixel i comes from how much the masks of K-1 rephrasings of the same query
disagree there (output consistency-driven pseudo-labeling, OCPL, CORA §3.2.1, Eq. 6-7), or,
for the Table 4 baseline, from the teacher's confidence.

**Eq. 6 against its text.** Eq. 6 sets the weight to the variance across rephrasings,
``λ_i = 1/(k-1) Σ_j (M_ij - mean_l M_il)²``, but the text says "unstable pixels receive lower
weights, while stable ones are emphasized": the variance itself does the opposite (a pixel
where all rephrasings agree gets weight 0). We implement the text by default, ``λ = 1 -
var/0.25`` (0.25 is the largest variance of values in [0, 1], so λ is in [0, 1] and equals 1
where the rephrasings agree), and keep the literal Eq. 6 as ``mapping='variance'``.

**Reduction.** Eq. 7 *sums* ``λ_i (BCE_i + DICE_i)`` over the W×H pixels. Dice is not a
per-pixel quantity; we weight Dice's sums by λ (as ``MaskDiceLoss`` does with weights). BCE is
reduced as LISA reduces its labeled BCE, ``Σ_i λ_i·BCE_i / |valid pixels|`` per mask
(``reduction='mean'``, default), so labeled and unlabeled losses are on one scale and σ
(Eq. 9) is their ratio. ``reduction='sum'`` is Eq. 7's literal ``Σ_i λ_i·BCE_i``; the two differ
by the number of pixels, so the paper's σ = 0.001 with a sum at Cityscapes' 1024×2048 masks
is σ ≈ 0.001 × 2.1e6 ≈ 2100 with the mean (and 0.001 × 32768 ≈ 33 on the 128×256 toy city).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from .mask_losses import MaskBCELoss, MaskDiceLoss

MAPPINGS = ('stability', 'variance', 'confidence', 'none')
MAX_VARIANCE = 0.25  # largest variance of values in [0, 1] (half at 0, half at 1)


def rephrasing_variance(probs: torch.Tensor) -> torch.Tensor:
    """Eq. 6's per-pixel variance over rephrasings: (Q, K-1, H, W) -> (Q, H, W).

    The population variance (divided by K-1, the number of rephrasings), as Eq. 6 writes it.
    """
    if probs.ndim != 4:
        raise ValueError(f'probs must be (Q, K-1, H, W), got {tuple(probs.shape)}')
    probs = probs.float()
    return (probs - probs.mean(dim=1, keepdim=True)).pow(2).mean(dim=1)


@MODELS.register_module()
class VarianceWeightedLoss(nn.Module):
    """BCE + Dice on pseudo-masks with per-pixel weights λ from output consistency.

    Mappings from what is measured to λ:

    - ``'stability'`` (default, CORA's text): ``λ = clamp(1 - var / 0.25, 0, 1)``.
    - ``'variance'`` (CORA's Eq. 6, literal): ``λ = var``.
    - ``'confidence'`` (Table 4's confidence-threshold baseline): ``λ = 1`` where the teacher's
      confidence is at least ``conf_thresh``, else 0; needs no rephrasing passes.
    - ``'none'``: ``λ = 1`` (plain pseudo-label training).

    Args:
        mapping (str): One of ``MAPPINGS``.
        bce_weight (float): Weight of the BCE term (LISA's labeled weight 2.0).
        dice_weight (float): Weight of the Dice term (LISA's 0.5).
        conf_thresh (float): Threshold of ``'confidence'`` (UniMatch's 0.95).
        reduction (str): ``'mean'`` (BCE averaged over a mask's valid pixels, LISA's scale) or
            ``'sum'`` (Eq. 7's sum over pixels); see the module docstring for σ.
        ignore_index (int): Pseudo-mask value left out of the loss.
        loss_name (str): Key in the loss dict.
    """

    def __init__(self,
                 mapping: str = 'stability',
                 bce_weight: float = 2.0,
                 dice_weight: float = 0.5,
                 conf_thresh: float = 0.95,
                 reduction: str = 'mean',
                 ignore_index: int = 255,
                 loss_name: str = 'loss_pseudo_mask') -> None:
        super().__init__()
        if mapping not in MAPPINGS:
            raise ValueError(f'mapping must be one of {MAPPINGS}, got {mapping!r}')
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.mapping, self.conf_thresh, self.reduction = mapping, conf_thresh, reduction
        self.ignore_index = ignore_index
        self.bce = MaskBCELoss(loss_weight=bce_weight, ignore_index=ignore_index)
        self.dice = MaskDiceLoss(loss_weight=dice_weight, ignore_index=ignore_index)
        self._loss_name = loss_name

    @property
    def needs_rephrasings(self) -> bool:
        """Whether :meth:`forward` needs the K-1 rephrasings' probabilities."""
        return self.mapping in ('stability', 'variance')

    def pixel_weights(self,
                      targets: torch.Tensor,
                      probs: Optional[torch.Tensor] = None,
                      confidence: Optional[torch.Tensor] = None) -> torch.Tensor:
        """λ per pixel, (Q, H, W) float32, from the mapping's input.

        Args:
            targets (Tensor): (Q, H, W) pseudo-masks (only their shape is used).
            probs (Tensor, optional): (Q, K-1, H, W) mask probabilities of the rephrasings (frozen
                model).
            confidence (Tensor, optional): (Q, H, W) teacher confidence in [0, 1].

        Raises:
            ValueError: The mapping's input is missing or of the wrong shape.
        """
        if self.mapping == 'none':
            return torch.ones(targets.shape, dtype=torch.float32, device=targets.device)
        if self.mapping == 'confidence':
            if confidence is None or confidence.shape != targets.shape:
                raise ValueError("mapping 'confidence' needs the teacher confidence (Q, H, W) "
                                 f'of the pseudo-masks {tuple(targets.shape)}, got '
                                 f'{None if confidence is None else tuple(confidence.shape)}')
            return (confidence.float() >= self.conf_thresh).float()
        if probs is None or probs.shape[0] != targets.shape[0] or \
                probs.shape[2:] != targets.shape[1:] or probs.shape[1] < 2:
            raise ValueError(f'mapping {self.mapping!r} needs the probabilities (Q, K-1 >= 2, '
                             f'H, W) of the pseudo-masks {tuple(targets.shape)}, got '
                             f'{None if probs is None else tuple(probs.shape)}')
        variance = rephrasing_variance(probs)
        if self.mapping == 'variance':
            return variance
        return (1 - variance / MAX_VARIANCE).clamp(0, 1)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """Weighted BCE + Dice.

        Args:
            logits (Tensor): (Q, H, W) mask logits of the trained query.
            targets (Tensor): (Q, H, W) pseudo-masks in {0, 1, ignore_index}.
            weights (Tensor): (Q, H, W) λ from :meth:`pixel_weights` (no gradient flows into it).

        Returns:
            A float32 scalar.
        """
        weights = weights.detach()
        if self.reduction == 'mean':
            bce = self.bce(logits, targets, weights)
        else:  # Eq. 7: sum over pixels, mean over masks
            valid = targets != self.ignore_index
            per_pixel = F.binary_cross_entropy_with_logits(
                logits.float(), (targets == 1).float(), reduction='none')
            lam = torch.where(valid, weights.float(), torch.zeros_like(per_pixel))
            summed = torch.where(lam > 0, per_pixel * lam, torch.zeros_like(per_pixel))
            bce = self.bce.loss_weight * summed.flatten(1).sum(1).sum() / max(len(targets), 1)
        return bce + self.dice(logits, targets, weights)

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict (mmseg's convention)."""
        return self._loss_name
