"""Evaluation metrics of mmcora, registered in mmseg's ``METRICS`` on import."""
from .reasoning_iou import MaskRecord, ReasoningIoUMetric

__all__ = ['MaskRecord', 'ReasoningIoUMetric']
