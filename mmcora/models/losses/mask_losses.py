"""LISA's per-mask sigmoid BCE and Dice losses, with ignore pixels and per-pixel weights.

Both losses take the Q masks of a batch flattened into one tensor, as LISA does, and return
the mean over masks (LISA: sum ÷ num_masks), so every mask counts the same whatever its size
or image.

Differences from LISA (``model/LISA.py::sigmoid_ce_loss``, ``dice_loss``):

- LISA ignores nothing: its targets are binarised, so void regions count as background. mmseg
  data marks void with ``ignore_index`` (255), and we leave those pixels out of the loss: they
  add nothing and receive exactly zero gradient.
- Optional per-pixel ``weights`` (CORA's output-consistency weights on unlabeled images).
- Computed in float32 whatever the logits' dtype: sums over ~10⁶ pixels in bf16 lose digits.
- Q == 0 (a text-only sample) gives a zero still connected to the graph, so every rank
  backpropagates through the same parameters under DDP.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

WEIGHT_NORMALIZERS = ('valid', 'weights')


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor,
                  weights: Optional[torch.Tensor]) -> None:
    """Raise ValueError unless logits, targets (and weights) are the same (Q, H, W)."""
    if logits.ndim != 3 or targets.shape != logits.shape:
        raise ValueError(f'logits {tuple(logits.shape)} and targets {tuple(targets.shape)} '
                         'must both be (Q, H, W) and equal')
    if weights is not None and weights.shape != logits.shape:
        raise ValueError(f'weights {tuple(weights.shape)} must match logits '
                         f'{tuple(logits.shape)}')


def _binary_targets_and_weights(targets: torch.Tensor, weights: Optional[torch.Tensor],
                                ignore_index: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Float {0, 1} targets and the per-pixel weights with ignore pixels zeroed.

    Values other than 1 and ``ignore_index`` are background. They are not checked here: a
    check would synchronise with the device every iteration (the metric does check).

    Args:
        targets (Tensor): (Q, H, W) integer targets in {0, 1, ignore_index}.
        weights (Tensor | None): Optional (Q, H, W) float per-pixel weights.
        ignore_index (int): Target value to exclude.

    Returns:
        ``(binary, pixel_weights)``, both float32 (Q, H, W); ``pixel_weights`` is 0 on
        ignore pixels and ``weights`` (or 1) elsewhere.
    """
    valid = targets != ignore_index
    binary = (targets == 1).float()
    if weights is None:
        return binary, valid.float()
    # where, not multiply: a non-finite weight on an ignore pixel must not leak in.
    return binary, torch.where(valid, weights.float(), torch.zeros_like(binary))


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` with 0 where the denominator is 0 (gradients stay finite).

    The denominator is replaced by 1 before dividing, instead of selecting after it,
    because ``where`` after a 0/0 still backpropagates NaN into the unselected branch.
    """
    nonzero = denominator > 0
    safe = torch.where(nonzero, denominator, torch.ones_like(denominator))
    return torch.where(nonzero, numerator / safe, torch.zeros_like(numerator))


def _mean_over_masks(per_mask: torch.Tensor) -> torch.Tensor:
    """LISA's ``sum / num_masks``; with no masks the empty sum is a graph-connected 0."""
    return per_mask.sum() / max(per_mask.numel(), 1)


@MODELS.register_module()
class MaskBCELoss(nn.Module):
    """Sigmoid binary cross-entropy per mask, averaged over pixels, then over masks.

    For mask q with valid (non-ignored) pixels V_q, per-pixel BCE ``b`` and weights ``w``
    (1 without weights)::

        loss_q = Σ_{V_q} w·b / |V_q|      (weight_normalizer='valid', default)
        loss_q = Σ_{V_q} w·b / Σ_{V_q} w  (weight_normalizer='weights')
        loss   = loss_weight · mean_q loss_q

    Without weights both are LISA's per-pixel mean (over valid pixels here). With weights,
    ``'valid'`` follows CORA's Eq. 7 (``Σ_i λ_i·BCE_i``, with LISA's per-pixel mean): low
    weights lower the loss, so an image whose pseudo-label is unstable everywhere counts
    less. ``'weights'`` only redistributes emphasis inside a mask and keeps its magnitude.
    A mask with no valid pixels (or zero total weight) contributes 0 but still counts in
    the mean over masks, as LISA divides by the number of masks. An all-background target
    (a class absent from the image) is an ordinary target: the loss pushes all logits down.

    Args:
        loss_weight (float): Multiplier of the loss (LISA: 2.0). Defaults to 2.0.
        ignore_index (int): Target value left out of the loss. Defaults to 255.
        weight_normalizer (str): ``'valid'`` or ``'weights'``, see above. Defaults to ``'valid'``.
        loss_name (str): Key of the loss in the loss dict; must start with ``loss_`` to be
            backpropagated by mmseg. Defaults to ``'loss_mask_bce'``.
    """

    def __init__(self,
                 loss_weight: float = 2.0,
                 ignore_index: int = 255,
                 weight_normalizer: str = 'valid',
                 loss_name: str = 'loss_mask_bce') -> None:
        super().__init__()
        if weight_normalizer not in WEIGHT_NORMALIZERS:
            raise ValueError(f'weight_normalizer must be one of {WEIGHT_NORMALIZERS}, '
                             f'got {weight_normalizer!r}')
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.weight_normalizer = weight_normalizer
        self._loss_name = loss_name

    def forward(self,
                logits: torch.Tensor,
                targets: torch.Tensor,
                weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits (Tensor): (Q, H, W) mask logits, any float dtype.
            targets (Tensor): (Q, H, W) integer targets in {0, 1, ignore_index}.
            weights (Tensor, optional): Optional (Q, H, W) non-negative per-pixel weights.

        Returns:
            A float32 scalar.
        """
        _check_shapes(logits, targets, weights)
        binary, pixel_weights = _binary_targets_and_weights(targets, weights, self.ignore_index)
        bce = F.binary_cross_entropy_with_logits(logits.float(), binary, reduction='none')
        weighted = torch.where(pixel_weights > 0, bce * pixel_weights, torch.zeros_like(bce))
        numerator = weighted.flatten(1).sum(1)
        if self.weight_normalizer == 'valid':
            denominator = (targets != self.ignore_index).flatten(1).sum(1).float()
        else:
            denominator = pixel_weights.flatten(1).sum(1)
        return self.loss_weight * _mean_over_masks(_safe_ratio(numerator, denominator))

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict (mmseg's convention)."""
        return self._loss_name


@MODELS.register_module()
class MaskDiceLoss(nn.Module):
    """LISA's Dice loss on sigmoid probabilities, per mask, averaged over masks.

    For mask q, ``p = sigmoid(logits)``, binary target ``t`` and pixel weights ``w`` (1 on
    valid pixels without weights, 0 on ignore pixels)::

        loss_q = 1 - (2·Σ w·p·t + eps) / (Σ w·p + Σ w·t + eps)
        loss   = loss_weight · mean_q loss_q

    LISA divides p and t by 1000 before summing and uses eps=1e-6, which is algebraically
    ``eps = 1e-3`` on the raw sums; we compute that equivalent form directly (in float32).
    The eps makes a mask with no valid pixels score exactly 0, and an all-background
    target score ``1 - eps/(Σp + eps)``, which still pushes the logits down.

    Args:
        loss_weight (float): Multiplier of the loss (LISA: 0.5). Defaults to 0.5.
        ignore_index (int): Target value left out of the loss. Defaults to 255.
        eps (float): Smoothing added to numerator and denominator. Defaults to 1e-3 (LISA).
        loss_name (str): Key of the loss in the loss dict. Defaults to ``'loss_mask_dice'``.
    """

    def __init__(self,
                 loss_weight: float = 0.5,
                 ignore_index: int = 255,
                 eps: float = 1e-3,
                 loss_name: str = 'loss_mask_dice') -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f'eps must be positive (it keeps empty masks finite), got {eps}')
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.eps = eps
        self._loss_name = loss_name

    def forward(self,
                logits: torch.Tensor,
                targets: torch.Tensor,
                weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits (Tensor): (Q, H, W) mask logits, any float dtype.
            targets (Tensor): (Q, H, W) integer targets in {0, 1, ignore_index}.
            weights (Tensor, optional): Optional (Q, H, W) non-negative per-pixel weights
                multiplying both the prediction and the target terms.

        Returns:
            A float32 scalar.
        """
        _check_shapes(logits, targets, weights)
        binary, pixel_weights = _binary_targets_and_weights(targets, weights, self.ignore_index)
        probs = logits.float().sigmoid()
        # Zero the ignore pixels by selection so they get exactly zero gradient.
        weighted_probs = torch.where(pixel_weights > 0, probs * pixel_weights,
                                     torch.zeros_like(probs))
        intersection = (weighted_probs * binary).flatten(1).sum(1)
        cardinality = weighted_probs.flatten(1).sum(1) + (pixel_weights * binary).flatten(1).sum(1)
        per_mask = 1 - (2 * intersection + self.eps) / (cardinality + self.eps)
        return self.loss_weight * _mean_over_masks(per_mask)

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict (mmseg's convention)."""
        return self._loss_name
