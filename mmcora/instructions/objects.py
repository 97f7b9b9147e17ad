"""Objects from semantic label maps: connected components of a class mask.

Conditional instructions need individual objects, but semantic data sets give one mask per
class. An object here is a connected component (8-connectivity) of a class mask with at least
``min_area`` pixels and a box at least ``min_side`` pixels wide and high; smaller specks
(labelling noise) and slivers (what an occluder leaves of an object) are ignored.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np


@dataclass
class SceneObject:
    """One connected component of one class.

    Attributes:
        class_id: Label id of the class.
        mask: (H, W) bool mask of the component.
        bbox: ``(x0, y0, x1, y1)``, pixel box with exclusive x1/y1.
        area: Number of pixels.
        index: Position among the objects of its image (stable, for ids and seeds).
    """
    class_id: int
    mask: np.ndarray
    bbox: Tuple[int, int, int, int]
    area: int
    index: int = 0

    @property
    def width(self) -> int:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]

    @property
    def center(self) -> Tuple[float, float]:
        return (self.bbox[0] + self.bbox[2]) / 2, (self.bbox[1] + self.bbox[3]) / 2

    @property
    def ground_y(self) -> int:
        """Row just below the object's lowest pixel: where it meets the ground."""
        return self.bbox[3]


def extract_objects(label_map: np.ndarray, class_ids: Iterable[int], min_area: int,
                    min_side: int = 1) -> List[SceneObject]:
    """Connected components of the given classes, largest first within a class.

    Args:
        label_map: (H, W) integer label map (255 = ignore).
        class_ids: Classes whose components are objects.
        min_area: Components smaller than this are dropped.
        min_side: Components whose box is narrower or lower than this are dropped.

    Returns:
        Objects ordered by class id, then by decreasing area (ties by position).
    """
    objects: List[SceneObject] = []
    for class_id in sorted(set(int(c) for c in class_ids)):
        class_mask = (label_map == class_id).astype(np.uint8)
        if not class_mask.any():
            continue
        count, components, stats, _ = cv2.connectedComponentsWithStats(class_mask, connectivity=8)
        found = []
        for comp in range(1, count):
            area = int(stats[comp, cv2.CC_STAT_AREA])
            if area < min_area:
                continue
            x, y = int(stats[comp, cv2.CC_STAT_LEFT]), int(stats[comp, cv2.CC_STAT_TOP])
            w, h = int(stats[comp, cv2.CC_STAT_WIDTH]), int(stats[comp, cv2.CC_STAT_HEIGHT])
            if min(w, h) < min_side:
                continue
            found.append((-area, y, x, comp, (x, y, x + w, y + h), area))
        for _, _, _, comp, bbox, area in sorted(found):
            objects.append(SceneObject(class_id, components == comp, bbox, area))
    for index, obj in enumerate(objects):
        obj.index = index
    return objects


def class_areas(label_map: np.ndarray, ignore_index: int = 255) -> Dict[int, int]:
    """Pixel count per class present in a label map."""
    values, counts = np.unique(label_map, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts) if v != ignore_index}


def mask_bbox(mask: np.ndarray) -> Optional[List[int]]:
    """``[x0, y0, x1, y1]`` of a mask's pixels with exclusive x1/y1; None if it is empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def encode_rle(mask: np.ndarray) -> Dict[str, list]:
    """Row-major run-length encoding: ``{'size': [h, w], 'counts': [zeros, ones, ...]}``."""
    flat = np.asarray(mask, dtype=bool).ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {'size': [int(mask.shape[0]), int(mask.shape[1])], 'counts': counts}


def decode_rle(rle: Dict[str, list], where: Optional[str] = None) -> np.ndarray:
    """Inverse of :func:`encode_rle`.

    Raises:
        ValueError: The counts do not add up to the size (``where`` names the record).
    """
    h, w = rle['size']
    counts = np.asarray(rle['counts'], dtype=np.int64)
    if counts.sum() != h * w or (counts < 0).any():
        raise ValueError(f'{where or "rle"}: run lengths sum to {int(counts.sum())}, '
                         f'expected {h}x{w}={h * w}')
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape(h, w)
