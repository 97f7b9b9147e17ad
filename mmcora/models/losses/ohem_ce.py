"""Online hard example mining cross-entropy as UniMatch trains Cityscapes with it."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class OhemCrossEntropyLoss(nn.Module):
    """Cross-entropy over the hard pixels of a batch, averaged over those pixels.

    A labeled pixel is hard when the probability of its true class is at most ``thresh``; if
    fewer than ``min_kept`` pixels of the batch are hard, the ``min_kept`` least confident
    ones are kept instead (all valid pixels when there are fewer). This is UniMatch's
    ``ProbOhemCrossEntropy2d``. mmseg's ``OHEMPixelSampler`` selects the same pixels (with
    ``min_kept`` counted per image) but its cross-entropy then averages over every pixel, so
    the loss shrinks as fewer pixels are kept; here the mean is over the kept pixels.

    Args:
        thresh (float): Probability below which a pixel is hard (UniMatch: 0.7).
        min_kept (int): Pixels kept per batch at least (UniMatch: 200000 for 2 images of 801x801).
        loss_weight (float): Multiplier of the loss.
        loss_name (str): Key of the loss in the loss dict (mmseg sums keys starting with ``loss_``).
    """

    def __init__(self,
                 thresh: float = 0.7,
                 min_kept: int = 200000,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce') -> None:
        super().__init__()
        if not 0 < thresh <= 1 or min_kept < 0:
            raise ValueError(f'OhemCrossEntropyLoss: thresh must be in (0, 1] and min_kept >= 0,'
                             f' got thresh={thresh}, min_kept={min_kept}')
        self.thresh = thresh
        self.min_kept = min_kept
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @torch.no_grad()
    def hard_pixels(self, logits: torch.Tensor, label: torch.Tensor,
                    ignore_index: int) -> torch.Tensor:
        """(B, H, W) bool mask of the pixels the loss is computed on."""
        valid = label != ignore_index
        num_valid = int(valid.sum())
        if num_valid <= self.min_kept:
            return valid
        prob = logits.float().softmax(dim=1)
        true_prob = prob.gather(1, label.masked_fill(~valid, 0)[:, None])[:, 0]
        true_prob = true_prob.masked_fill(~valid, 1.0)  # ignored pixels sort last
        threshold = self.thresh
        if self.min_kept > 0:
            kth = true_prob.flatten().kthvalue(self.min_kept).values.item()
            threshold = max(threshold, kth)
        return valid & (true_prob <= threshold)

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight=None,
                ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        """Loss of logits (B, C, H, W) against labels (B, H, W).

        ``weight`` (mmseg's pixel sampler output) must be None: this loss does its own
        mining, and a sampler on the same head would mine twice.
        """
        if weight is not None:
            raise ValueError('OhemCrossEntropyLoss mines its own pixels; remove the decode '
                             "head's sampler")
        kept = self.hard_pixels(cls_score, label, ignore_index)
        target = label.masked_fill(~kept, ignore_index)
        if not kept.any():  # keep the graph (and DDP's used parameters) with a zero loss
            return cls_score.sum() * 0
        return self.loss_weight * F.cross_entropy(cls_score, target, ignore_index=ignore_index)

    @property
    def loss_name(self) -> str:
        return self._loss_name
