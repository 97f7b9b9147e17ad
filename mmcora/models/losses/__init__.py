"""Losses of mmcora, registered in mmseg's ``MODELS`` on import."""
from .mask_losses import MaskBCELoss, MaskDiceLoss
from .ohem_ce import OhemCrossEntropyLoss

__all__ = ['MaskBCELoss', 'MaskDiceLoss', 'OhemCrossEntropyLoss']
