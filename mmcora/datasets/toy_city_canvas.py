"""Canvas and ground plane of a toy-city scene: classes, the painted maps, perspective.

Shared by :mod:`.toy_city_background` and :mod:`.toy_city_things`; :mod:`.toy_city_render`
puts a scene together.
"""
from typing import List, Tuple

import cv2
import numpy as np

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, TERRAIN, SKY = 0, 1, 2, 5, 7, 8, 9, 10
PERSON, RIDER, CAR, TRUCK, BUS, BICYCLE = 11, 12, 13, 14, 15, 18
VOID = 255
THING_CLASSES = (PERSON, RIDER, CAR, TRUCK, BUS, BICYCLE)
# Cityscapes labelIds of the trainIds used here; void is the ego vehicle (labelId 1).
LABEL_IDS = {
    ROAD: 7,
    SIDEWALK: 8,
    BUILDING: 11,
    POLE: 17,
    SIGN: 20,
    VEGETATION: 21,
    TERRAIN: 22,
    SKY: 23,
    PERSON: 24,
    RIDER: 25,
    CAR: 26,
    TRUCK: 27,
    BUS: 28,
    BICYCLE: 33,
    VOID: 1
}

Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive-exclusive)


class SceneCanvas:
    """Image, trainId map and per-class instance map painted together.

    Args:
        rng (np.random.Generator): Generator for pixel grain.
        h (int): Height in pixels.
        w (int): Width in pixels.
    """

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.image = np.zeros((h, w, 3), np.float32)
        self.labels = np.full((h, w), VOID, np.uint8)
        self.instances = np.zeros((h, w), np.int32)
        self.count = {c: 0 for c in THING_CLASSES}
        self.reserved: List[Tuple[int, Box]] = []

    def blank(self) -> np.ndarray:
        return np.zeros((self.h, self.w), np.uint8)

    def paint(self,
              mask: np.ndarray,
              train_id: int,
              colour,
              grain: float = 8.0,
              instance: int = 0) -> None:
        """Paint ``colour`` (RGB or an (h, w, 3) texture) with pixel grain where mask > 0."""
        sel = mask > 0
        n = int(sel.sum())
        if n == 0:
            return
        colour = np.asarray(colour, np.float32)
        pixels = colour[sel] if colour.ndim == 3 else np.broadcast_to(colour, (n, 3))
        self.image[sel] = pixels + self.rng.normal(0, grain, size=(n, 1))
        self.labels[sel] = train_id
        self.instances[sel] = instance

    def new_instance(self, train_id: int) -> int:
        self.count[train_id] += 1
        return self.count[train_id]

    def is_free(self, train_id: int, box: Box, margin: int = 2) -> bool:
        """Whether ``box`` keeps ``margin`` pixels from every reserved box of its class."""
        x0, y0, x1, y1 = box
        return not any(other == train_id and not (x1 + margin <= a0 or a1 + margin <= x0 or y1 +
                                                  margin <= b0 or b1 + margin <= y0)
                       for other, (a0, b0, a1, b1) in self.reserved)


class StreetGeometry:
    """Ground plane of the scene: horizon (camera height), vanishing point, street edges."""

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.horizon = int(h * rng.uniform(0.32, 0.52))
        self.vx = w * rng.uniform(0.35, 0.65)
        self.road_half = w * rng.uniform(0.34, 0.5)  # half road width at the bottom row
        self.walk_half = self.road_half * rng.uniform(1.45, 1.9)
        self.wall_half = self.walk_half * rng.uniform(1.0, 1.7)

    def depth(self, y: float) -> float:
        """0 at the horizon, 1 at the bottom row."""
        return (y - self.horizon) / (self.h - self.horizon)

    def row(self, depth: float) -> int:
        return int(round(self.horizon + (self.h - self.horizon) * depth))

    def road_width(self, y: float) -> float:
        return 2 * self.road_half * self.depth(y)

    def road_span(self, y: float) -> Tuple[float, float]:
        d = self.road_half * self.depth(y)
        return self.vx - d, self.vx + d

    def walk_span(self, y: float) -> Tuple[float, float]:
        d = self.walk_half * self.depth(y)
        return self.vx - d, self.vx + d

    def wedge(self, half: float) -> np.ndarray:
        return np.array(
            [[self.vx, self.horizon], [self.vx - half, self.h], [self.vx + half, self.h]], np.int32)

    def nearness(self) -> np.ndarray:
        """(h, w) depth map for the fog: 0 above the horizon, rising to 1 at the bottom."""
        rows = np.clip((np.arange(self.h) - self.horizon) / (self.h - self.horizon), 0, 1)
        return np.broadcast_to(rows[:, None], (self.h, self.w)).astype(np.float32)


def poly_mask(c: SceneCanvas, points) -> np.ndarray:
    """(h, w) uint8 mask of a filled polygon with float vertices."""
    mask = c.blank()
    cv2.fillPoly(mask, [np.round(np.asarray(points, np.float64)).astype(np.int32)], 1)
    return mask


def sidewalk_x(g: StreetGeometry, rng: np.random.Generator, y: int, width: float,
               side: int) -> float:
    """Left edge of a ``width``-wide object on the ``side`` sidewalk (-1 left, 1 right)."""
    lo, hi = g.walk_span(y)
    r_lo, r_hi = g.road_span(y)
    return (rng.uniform(lo, max(lo, r_lo -
                                width)) if side < 0 else rng.uniform(r_hi, max(r_hi, hi - width)))
