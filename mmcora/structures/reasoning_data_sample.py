"""Data sample of one image with N queries (the reasoning-segmentation analogue of mmseg's
``SegDataSample``)."""
import torch
from mmengine.structures import BaseDataElement


class ReasoningDataSample(BaseDataElement):
    """One image and its N queries.

    Metainfo keys: ``img_path``, ``ori_shape`` (H, W), ``sam_shape`` (h, w) after the SAM
    resize, ``queries`` (N dicts: ``text``, ``answer``, ``type``, ``class_id``,
    ``class_name``, ``relation``).

    Data fields:
        gt_masks: (N, H, W) uint8 targets in {0, 1, 255 = ignore} (pseudo-masks for
            unlabeled samples, whose metainfo also has ``pseudo_path`` and the K-1
            ``consistency_queries``).
        gt_confidence: (N, H, W) float teacher confidence of a pseudo-mask, if read.
        anchor_crops: (A, 3, S, S) uint8 masked anchor crops for the CLIP encoder.
        anchor_index: (A,) long, the query of each anchor crop.
        anchor_boxes: (A, 4) float anchor boxes, (x0, y0, x1, y1) / (W, H, W, H).
        pred_masks: (N, H, W) bool predictions (logit > 0).
        pred_texts: N generated or teacher-forced answers.
    """

    @property
    def num_queries(self) -> int:
        return len(self.metainfo.get('queries', []))

    @property
    def is_pseudo(self) -> bool:
        """Whether the sample is an unlabeled image with a pseudo-label (stage 3)."""
        return self.metainfo.get('pseudo_path') is not None

    @property
    def gt_masks(self) -> torch.Tensor:
        return self._gt_masks

    @gt_masks.setter
    def gt_masks(self, value: torch.Tensor) -> None:
        self.set_field(value, '_gt_masks', dtype=torch.Tensor)

    @gt_masks.deleter
    def gt_masks(self) -> None:
        del self._gt_masks

    @property
    def pred_masks(self) -> torch.Tensor:
        return self._pred_masks

    @pred_masks.setter
    def pred_masks(self, value: torch.Tensor) -> None:
        self.set_field(value, '_pred_masks', dtype=torch.Tensor)

    @pred_masks.deleter
    def pred_masks(self) -> None:
        del self._pred_masks
