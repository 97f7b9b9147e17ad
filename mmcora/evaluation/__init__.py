"""Evaluation metrics of mmcora, registered in mmseg's ``METRICS`` on import."""
from .reasoning_iou import MaskRecord, ReasoningIoUMetric
from .segzero_metric import SegZeroMetric

__all__ = ['MaskRecord', 'ReasoningIoUMetric', 'SegZeroMetric']
