"""Seg-Zero's positional targets from a mask: the box of its extreme pixels and two points.

Seg-Zero trains the reasoner to answer a box and "the points of the two largest inscribed
circles inside the object". Its data tutorial makes them from the mask's Euclidean distance
transform: the first point is the pixel farthest from the background (the centre of the
largest inscribed circle); the second is the same maximum taken over the mask pixels farther
from the first point than the median of all mask pixels' distances to it, which puts it in
the other half of the object (the centre of the largest circle there). Both are mask pixels by
construction. The image border counts as background here (the mask is padded with zeros), so
an object cut by the border keeps its points inside the visible part rather than on the edge.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np

from .objects import mask_bbox

Point = Tuple[int, int]


@dataclass(frozen=True)
class SegZeroTarget:
    """What the reasoner should answer for one query, in one coordinate frame.

    Args:
        box (tuple[int, int, int, int]): (x1, y1, x2, y2), inclusive extreme pixels.
        points (tuple[Point, Point]): Two (x, y) points inside the object.
    """
    box: Tuple[int, int, int, int]
    points: Tuple[Point, Point]

    def to_canvas(self, transform) -> 'SegZeroTarget':
        """The same target on the reasoner's canvas.

        Args:
            transform (CanvasTransform): The image's canvas transform.

        Returns:
            SegZeroTarget: Box and points in canvas pixels.
        """
        return SegZeroTarget(
            transform.box_to_canvas(self.box),
            tuple(transform.point_to_canvas(p) for p in self.points))


def mask_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the extreme foreground pixels, inclusive.

    Args:
        mask (np.ndarray): (H, W) bool mask with at least one pixel.

    Returns:
        tuple[int, int, int, int]: The box.

    Raises:
        ValueError: The mask is empty or not 2-D.
    """
    if mask.ndim != 2:
        raise ValueError(f'masks must be (H, W), got shape {mask.shape}')
    box = mask_bbox(mask)  # exclusive x1/y1, as the instruction records keep it
    if box is None:
        raise ValueError('an empty mask has no box: the query has no target pixel')
    return box[0], box[1], box[2] - 1, box[3] - 1


def inscribed_points(mask: np.ndarray) -> Tuple[Point, Point]:
    """Centres of the two largest inscribed circles, as Seg-Zero prepares them.

    Args:
        mask (np.ndarray): (H, W) bool mask with at least one pixel.

    Returns:
        tuple[Point, Point]: (x, y) of the first and second point, both mask pixels; a mask
        of one pixel (or whose far half is empty) gives the same point twice.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError('an empty mask has no inscribed circle: the query has no target pixel')
    padded = np.pad(mask, 1).astype(np.uint8)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    ys, xs = np.nonzero(mask)
    values = distance[ys, xs]
    first = int(np.argmax(values))  # first maximum in row-major order: deterministic
    p1 = (int(xs[first]), int(ys[first]))
    from_p1 = np.hypot(xs - p1[0], ys - p1[1])
    far = from_p1 > np.median(from_p1)
    if not far.any():
        return p1, p1
    second = int(np.argmax(np.where(far, values, -1.0)))
    return p1, (int(xs[second]), int(ys[second]))


def target_from_mask(mask: np.ndarray) -> SegZeroTarget:
    """Box and two points of a mask, in the mask's own pixels.

    Args:
        mask (np.ndarray): (H, W) bool mask with at least one pixel.

    Returns:
        SegZeroTarget: The target in original image coordinates.
    """
    return SegZeroTarget(mask_box(np.asarray(mask, bool)), inscribed_points(mask))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes of inclusive pixels (Seg-Zero's ``+ 1``).

    Args:
        a (Sequence[float]): The first box.
        b (Sequence[float]): The second box.

    Returns:
        float: Intersection over union in [0, 1]; 0 for degenerate boxes.
    """
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(iw, 0) * max(ih, 0)

    def area(box):
        return max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)

    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0
