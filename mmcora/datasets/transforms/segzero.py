"""Pipeline transforms of Seg-Zero: the reasoner's canvas, positional targets, packing.

A Seg-Zero pipeline reads the same instruction data as CORA's::

    LoadImageFromFile -> [SampleQueries] -> LoadReasoningAnnotations -> SegZeroInputs
    -> PackSegZeroInputs

The reasoner sees the image resized to a square canvas (840 x 840, bilinear, as Seg-Zero's
``image.resize((840, 840), BILINEAR)``); the segmenter gets the original image. Each query's
target (the box of its mask and two inscribed-circle points, in canvas pixels) is computed
once per record and kept (:class:`SegZeroInputs`' cache). CORA's conditional instructions mark
their anchor with a placeholder for the anchor encoder; Seg-Zero has no anchor input, so the
placeholder is removed and the anchor is named in words only ("the car left of the bus").

On pseudo-labeled images (``SemiReasoningDataset`` -> ``LoadPseudoLabel`` ->
``SamplePseudoQueries``) the target comes from the teacher's pseudo-mask, and with a
confidence map it carries ``reliability``: the teacher's mean confidence over the
pseudo-mask's pixels, which weighs the query's GRPO group (``SegZeroSegmentor.loss_grpo``).
"""
from collections import OrderedDict
from typing import Hashable, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image

from ...instructions.canvas import SEG_ZERO_CANVAS, CanvasTransform
from ...instructions.point_targets import target_from_mask
from ...utils.special_tokens import ANCHOR_PLACEHOLDER
from .reasoning import PackReasoningInputs, chw


def words_only(text: str) -> str:
    """An instruction without the anchor placeholder (the anchor stays named in words)."""
    return ' '.join(text.replace(ANCHOR_PLACEHOLDER, ' ').split()).replace(' ?',
                                                                           '?').replace(' .', '.')


@TRANSFORMS.register_module()
class SegZeroInputs(BaseTransform):
    """The canvas image, the original in RGB, and each query's positional target.

    Adds ``canvas_img`` (S, S, 3) RGB uint8, ``rgb_img`` (H, W, 3) RGB uint8 and
    ``segzero_targets``: per query ``dict(box, points)`` in canvas pixels (and ``box_ori``,
    ``points_ori`` in original pixels), or None when the query's mask is empty (nothing to
    point at). Query texts lose the anchor placeholder. With a teacher's confidence map
    (``pseudo_confidence``, from ``LoadPseudoLabel``) a target also has ``reliability``, the
    mean confidence over its mask's pixels in [0, 1].

    Args:
        canvas (int): Side of the reasoner's square (Seg-Zero: 840).
        cache_size (int): Targets kept per process, keyed by image, class and target mask.
    """

    def __init__(self, canvas: int = SEG_ZERO_CANVAS, cache_size: int = 200_000) -> None:
        self.canvas = canvas
        self.cache_size = cache_size
        self._cache: 'OrderedDict[Hashable, Optional[dict]]' = OrderedDict()

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        rgb = np.ascontiguousarray(img[..., ::-1])
        results['rgb_img'] = rgb
        results['canvas_img'] = np.asarray(
            Image.fromarray(rgb).resize((self.canvas, self.canvas), Image.BILINEAR))
        frame = CanvasTransform(h, w, self.canvas)
        targets = []
        for i, query in enumerate(results.get('queries', [])):
            query['text'] = words_only(query['text'])
            if 'gt_masks' not in results:
                targets.append(None)
                continue
            confidence = results.get('pseudo_confidence')
            key = self._key(results, query)
            if confidence is not None:
                key = None  # a pseudo-label changes with the teacher: not cached
            if key is None or key not in self._cache:
                value = self._target(results['gt_masks'][i] == 1, frame, confidence)
                if key is not None:
                    self._remember(key, value)
            else:
                value = self._cache[key]
                self._cache.move_to_end(key)
            targets.append(value)
        results['segzero_targets'] = targets
        return results

    @staticmethod
    def _key(results: dict, query: dict) -> Optional[Hashable]:
        """What fixes a query's mask: the image and its class or its own target mask."""
        target = query.get('target')
        if target is not None:
            counts = target['rle']['counts']
            return results['img_path'], 'rle', counts if isinstance(counts, str) else str(counts)
        if query.get('class_id', -1) < 0:
            return None  # free text (inference): no cached target
        return results['img_path'], 'class', query['class_id']

    def _remember(self, key: Hashable, value: Optional[dict]) -> None:
        self._cache[key] = value
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    @staticmethod
    def _target(mask: np.ndarray,
                frame: CanvasTransform,
                confidence: Optional[np.ndarray] = None) -> Optional[dict]:
        if not mask.any():
            return None
        target = target_from_mask(mask)
        canvas = target.to_canvas(frame)
        value = dict(
            box=list(canvas.box),
            points=[list(p) for p in canvas.points],
            box_ori=list(target.box),
            points_ori=[list(p) for p in target.points])
        if confidence is not None:
            value['reliability'] = float(confidence[mask].mean())
        return value


@TRANSFORMS.register_module()
class PackSegZeroInputs(PackReasoningInputs):
    """Pack ``inputs = dict(canvas=(3, S, S), image=(3, H, W))`` RGB uint8 and the data
    sample, whose metainfo also has ``segzero_targets`` and ``canvas`` (S)."""

    META_KEYS = PackReasoningInputs.META_KEYS + ('segzero_targets', )

    def transform(self, results: dict) -> dict:
        sample = self.pack_sample(results)
        sample.set_metainfo(dict(canvas=results['canvas_img'].shape[0]))
        return dict(
            inputs=dict(canvas=chw(results['canvas_img']), image=chw(results['rgb_img'])),
            data_samples=sample)
