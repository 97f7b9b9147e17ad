"""Objects of a label map: instances where the data has them, connected components otherwise.

Conditional instructions need individual objects. Where the data set ships an instance map
(Cityscapes' ``*_gtFine_instanceIds.png``: ``labelId * 1000 + k`` for each instance of a
thing class, the bare ``labelId`` for stuff and for *group* regions such as a crowd of cars),
an object of an instance class is the set of pixels of one instance id >= 1000 inside the
class mask: two parked cars that touch are two objects, and a car cut in two by a pole in
front of it is one. Group regions (ids < 1000 inside an instance class) are no single object
and are left out. Classes without instances (poles, signs), and every class of data without
an instance map, fall back to connected components (8-connectivity) of the class mask, which
merge touching objects. Either way an object needs ``min_area`` pixels and a box at least
``min_side`` pixels wide and high; smaller specks (labelling noise) and slivers (what an
occluder leaves of an object) are ignored.
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


# Smallest instance id of a single object in Cityscapes-style instance maps.
INSTANCE_ID_OFFSET = 1000


def _regions(class_mask: np.ndarray, instance_map: Optional[np.ndarray]) -> Iterable[np.ndarray]:
    """The masks of the objects in a class mask: per instance id, or per component."""
    if instance_map is not None:
        for value in np.unique(instance_map[class_mask]):
            if value >= INSTANCE_ID_OFFSET:
                yield class_mask & (instance_map == value)
        return
    count, components = cv2.connectedComponents(class_mask.astype(np.uint8), connectivity=8)
    for comp in range(1, count):
        yield components == comp


def extract_objects(
    label_map: np.ndarray,
    class_ids: Iterable[int],
    min_area: int,
    min_side: int = 1,
    instance_map: Optional[np.ndarray] = None,
    instance_classes: Iterable[int] = ()
) -> List[SceneObject]:
    """Objects of the given classes, largest first within a class.

    Args:
        label_map (np.ndarray): (H, W) integer label map (255 = ignore).
        class_ids (Iterable[int]): Classes whose objects are wanted.
        min_area (int): Objects smaller than this are dropped.
        min_side (int): Objects whose box is narrower or lower than this are dropped.
        instance_map (np.ndarray, optional): (H, W) integer instance map (Cityscapes
            ``instanceIds``), or None to use connected components for every class.
        instance_classes (Iterable[int]): Classes whose objects come from ``instance_map``
            (Cityscapes' classes with instances); the others use connected components.

    Returns:
        Objects ordered by class id, then by decreasing area (ties by position).

    Raises:
        ValueError: ``instance_map`` and ``label_map`` differ in size.
    """
    if instance_map is not None and instance_map.shape != label_map.shape:
        raise ValueError(f'instance map of size {instance_map.shape} for a label map of size '
                         f'{label_map.shape}')
    with_instances = {int(c) for c in instance_classes}
    objects: List[SceneObject] = []
    for class_id in sorted(set(int(c) for c in class_ids)):
        class_mask = label_map == class_id
        if not class_mask.any():
            continue
        found = []
        source = instance_map if class_id in with_instances else None
        for mask in _regions(class_mask, source):
            area = int(mask.sum())
            if area < min_area:
                continue
            x0, y0, x1, y1 = mask_bbox(mask)
            if min(x1 - x0, y1 - y0) < min_side:
                continue
            found.append((-area, y0, x0, len(found), mask, (x0, y0, x1, y1), area))
        for *_, mask, bbox, area in sorted(found, key=lambda item: item[:4]):
            objects.append(SceneObject(class_id, mask, bbox, area))
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
