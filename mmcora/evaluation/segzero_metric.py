"""``SegZeroMetric``: cIoU / gIoU of the masks plus the accuracy of the reasoner's prompt.

Seg-Zero's reasoner answers a box and two points before any mask exists, so besides the
masks' cIoU and gIoU (:class:`ReasoningIoUMetric`, LISA's conventions) this reports, over the
queries that have a target (a non-empty ground-truth mask):

- ``box_acc``: the predicted box's IoU with the target's box (its extreme mask pixels,
  inclusive) is above 0.5, Seg-Zero's box-IoU reward rule;
- ``point_acc``: both predicted points fall inside the ground-truth mask;
- ``parse_rate``: the reply held a readable box at all (an unreadable one gives an empty mask).
"""
from collections import OrderedDict
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from mmseg.registry import METRICS

from ..instructions.point_targets import box_iou
from .reasoning_iou import ReasoningIoUMetric


@METRICS.register_module()
class SegZeroMetric(ReasoningIoUMetric):
    """:class:`ReasoningIoUMetric` with box, point and parse accuracy (percent).

    Reads ``pred_boxes`` and ``pred_points`` (original pixels, None for an unreadable reply)
    and ``segzero_targets`` (``box_ori``) from each data sample.

    Args:
        box_iou_threshold (float): A box counts as correct above this IoU (0.5).
        **kwargs (dict): :class:`ReasoningIoUMetric` arguments.
    """

    def __init__(self, box_iou_threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.box_iou_threshold = box_iou_threshold

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Per image: the mask records and one (readable, box hit, points hit) per query."""
        start = len(self.results)
        super().process(data_batch, data_samples)
        for offset, sample in enumerate(data_samples):
            name = sample.get('img_path', f'data sample #{offset} of the batch')
            n = len(sample['queries'])
            boxes = sample.get('pred_boxes', [None] * n)
            points = sample.get('pred_points', [None] * n)
            targets = sample.get('segzero_targets') or [None] * n
            if not len(boxes) == len(points) == len(targets) == n:
                raise ValueError(f'{name}: {n} queries but {len(boxes)} pred_boxes, '
                                 f'{len(points)} pred_points, {len(targets)} segzero_targets')
            gt = torch.as_tensor(sample['gt_masks']).cpu().numpy() == 1
            hits = []
            for i in range(n):
                if targets[i] is None:
                    continue
                box, pts = boxes[i], points[i] or []
                box_hit = box is not None and box_iou(box, targets[i]['box_ori']) > \
                    self.box_iou_threshold
                point_hit = len(pts) == 2 and all(self._inside(gt[i], p) for p in pts)
                hits.append((int(box is not None), int(box_hit), int(point_hit)))
            self.results[start + offset] = (self.results[start + offset], tuple(hits))

    @staticmethod
    def _inside(mask: np.ndarray, point: Sequence[int]) -> bool:
        x, y = int(point[0]), int(point[1])
        return 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and bool(mask[y, x])

    def compute_metrics(self, results: List) -> Dict[str, float]:
        metrics = super().compute_metrics([masks for masks, _ in results])
        hits = np.array([h for _, image in results for h in image], dtype=np.float64)
        out = OrderedDict(list(metrics.items())[:3])
        for name, column in (('parse_rate', 0), ('box_acc', 1), ('point_acc', 2)):
            out[name] = round(float(hits[:, column].mean()) * 100, 2) if len(hits) else 0.0
        out.update(list(metrics.items())[3:])
        return out
