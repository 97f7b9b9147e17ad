"""Losses of mmcora, registered in mmseg's ``MODELS`` on import."""
from .mask_losses import MaskBCELoss, MaskDiceLoss

__all__ = ['MaskBCELoss', 'MaskDiceLoss']
