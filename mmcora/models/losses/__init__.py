"""Losses of mmcora, registered in mmseg's ``MODELS`` on import."""
from .mask_losses import MaskBCELoss, MaskDiceLoss
from .ohem_ce import OhemCrossEntropyLoss
from .pseudo_mask_loss import VarianceWeightedLoss, rephrasing_variance
from .token_contrastive import TokenContrastiveLoss

__all__ = [
    'MaskBCELoss', 'MaskDiceLoss', 'OhemCrossEntropyLoss', 'TokenContrastiveLoss',
    'VarianceWeightedLoss', 'rephrasing_variance'
]
