"""Stuff of a toy-city scene: sky and skyline, walls in perspective, street, trees, poles, signs.

Painted before the things (:mod:`.toy_city_things`), far to near where it matters.
"""
from typing import Tuple

import cv2
import numpy as np

from .toy_city_canvas import (BUILDING, POLE, ROAD, SIDEWALK, SIGN, SKY, TERRAIN, VEGETATION,
                              SceneCanvas, StreetGeometry, poly_mask, sidewalk_x)
from .toy_city_looks import (SIGN_STYLES, SceneLook, facade_texture, foliage_texture, jitter,
                             road_texture, sky_texture, terrain_texture, walk_texture,
                             window_colour)


def paint_sky_and_ground(c: SceneCanvas, g: StreetGeometry, look: SceneLook,
                         rng: np.random.Generator) -> None:
    h, w = c.h, c.w
    c.paint(np.ones((h, w), np.uint8), SKY, sky_texture(rng, look.sky, h, w), grain=3)
    x = -int(rng.integers(0, w // 10))  # the skyline: distant blocks standing on the horizon
    while x < w:
        bw = int(w * rng.uniform(0.06, 0.2))
        if rng.random() < 0.8:
            family = look.facades[int(rng.integers(len(look.facades)))]
            top = int(g.horizon - h * rng.uniform(0.06, 0.3))
            tex = facade_texture(rng, family, h, w)
            c.paint(
                poly_mask(c, [(x, top), (x + bw, top), (x + bw, g.horizon + 1),
                              (x, g.horizon + 1)]),
                BUILDING,
                tex,
                grain=4)
        elif rng.random() < 0.5:  # a tree line between blocks
            crown = c.blank()
            cv2.ellipse(crown, (x + bw // 2, g.horizon), (bw // 2 + 1, int(h * 0.08) + 1), 0, 180,
                        360, 1, -1)
            c.paint(crown, VEGETATION, foliage_texture(rng, look.foliage, h, w), grain=10)
        x += bw
    ground = c.blank()
    ground[g.horizon:] = 1
    c.paint(ground, TERRAIN, terrain_texture(rng, look.terrain, h, w), grain=10)


def paint_walls(c: SceneCanvas, g: StreetGeometry, look: SceneLook,
                rng: np.random.Generator) -> None:
    """Buildings along both sides: wall planes in perspective, split into houses."""
    span = g.h - g.horizon
    for side in (-1, 1):
        if rng.random() < 0.2:
            continue
        # Houses are segments of equal length along the street: uniform steps in 1/depth.
        inv, near_inv = 1 / rng.uniform(0.08, 0.15), 1.0
        while inv > near_inv:
            step = rng.uniform(1.5, 4.0)
            d0, d1 = 1 / inv, min(1 / max(inv - step, near_inv), 1.0)
            inv -= step
            if rng.random() < 0.15:  # a gap between houses
                continue
            height = span * rng.uniform(0.8, 2.2)
            family = look.facades[int(rng.integers(len(look.facades)))]

            def at(d: float, v: float) -> Tuple[float, float]:
                x = g.vx + side * g.wall_half * d
                return x, g.horizon + span * d - v * height * d

            c.paint(
                poly_mask(
                    c, [at(d0, 0), at(d1, 0), at(d1, 1), at(d0, 1)]),
                BUILDING,
                facade_texture(rng, family, c.h, c.w),
                grain=5)
            windows = c.blank()
            cols, rows = int(rng.integers(3, 7)), int(rng.integers(3, 7))
            inv0, inv1 = 1 / d0, 1 / d1
            for i in range(cols):
                a = 1 / (inv0 + (inv1 - inv0) * (i + 0.25) / cols)
                b = 1 / (inv0 + (inv1 - inv0) * (i + 0.75) / cols)
                for j in range(rows):
                    v0, v1 = (j + 0.3) / rows * 0.9, (j + 0.75) / rows * 0.9
                    cv2.fillPoly(windows, [
                        np.round(np.array([at(a, v0), at(b, v0),
                                           at(b, v1), at(a, v1)])).astype(np.int32)
                    ], 1)
            c.paint(windows & (c.labels == BUILDING), BUILDING, window_colour(rng, family), grain=6)


def paint_street(c: SceneCanvas, g: StreetGeometry, look: SceneLook,
                 rng: np.random.Generator) -> None:
    """Sidewalks, road, lane markings and sometimes a pedestrian crossing (all road)."""
    h, w = c.h, c.w
    c.paint(
        poly_mask(c, g.wedge(g.walk_half)), SIDEWALK, walk_texture(rng, look.walk, h, w), grain=6)
    road = poly_mask(c, g.wedge(g.road_half))
    c.paint(road, ROAD, road_texture(rng, look.road, h, w), grain=8)
    marks = c.blank()
    dashed = rng.random() < 0.7
    for y in range(g.horizon + 2, h, 8 if dashed else 1):
        y1 = min(y + (4 if dashed else 1), h - 1)
        cv2.line(marks, (int(g.vx), y), (int(g.vx), y1), 1, max(1, int(4 * g.depth(y1))))
    if rng.random() < 0.35:
        y0 = g.row(rng.uniform(0.35, 0.75))
        band = max(3, int(0.08 * (g.h - g.horizon)))
        lo, hi = g.road_span(y0)
        for x in np.arange(lo, hi, max(4.0, g.road_width(y0) / 10))[::2]:
            # yapf: disable  (yapf breaks max(2, ...) between its arguments)
            cv2.rectangle(marks, (int(x), y0), (int(x + max(2, g.road_width(y0) / 20)),
                                                min(h - 1, y0 + band)), 1, -1)
            # yapf: enable
    c.paint(marks & road, ROAD, look.marking, grain=6)


def paint_vegetation_and_poles(c: SceneCanvas, g: StreetGeometry, look: SceneLook,
                               rng: np.random.Generator) -> None:
    """Hedges along the walls, trees and poles with signs on the sidewalks, far to near."""
    h, w = c.h, c.w
    leaves = foliage_texture(rng, look.foliage, h, w)
    if rng.random() < 0.4:  # a hedge strip at the foot of one wall
        side = -1 if rng.random() < 0.5 else 1
        hedge = []
        for d in np.linspace(0.05, 1.0, 12):
            hedge.append((g.vx + side * g.wall_half * d, g.horizon + (h - g.horizon) * d))
        top = [(x, y - 0.12 * (h - g.horizon) * g.depth(y)) for x, y in reversed(hedge)]
        c.paint(poly_mask(c, hedge + top), VEGETATION, leaves, grain=12)
    items = [('tree', g.row(rng.uniform(0.2, 0.8))) for _ in range(rng.integers(0, 4))]
    items += [('pole', g.row(rng.uniform(0.25, 0.9))) for _ in range(rng.integers(1, 4))]
    for kind, y in sorted(items, key=lambda item: item[1]):
        rw = g.road_width(y)
        side = -1 if rng.random() < 0.5 else 1
        x = sidewalk_x(g, rng, y, 0, side)
        if kind == 'tree':
            trunk_w = max(2, int(0.03 * rw))
            trunk = c.blank()
            cv2.rectangle(trunk, (int(x), int(y - 0.45 * rw)), (int(x) + trunk_w, y), 1, -1)
            crown = c.blank()
            for _ in range(int(rng.integers(3, 6))):
                cx = int(x + rng.uniform(-0.2, 0.2) * rw)
                cy = int(y - rw * rng.uniform(0.5, 0.8))
                cv2.ellipse(crown, (cx, cy), (int(0.15 * rw) + 2, int(0.12 * rw) + 2), 0, 0, 360, 1,
                            -1)
            c.paint(trunk, VEGETATION, jitter(rng, (90, 65, 40)), grain=6)
            c.paint(crown, VEGETATION, leaves, grain=14)
        else:
            pole_w = max(3, int(round(0.025 * rw)))
            top = int(y - rw * rng.uniform(0.5, 0.7))
            pole = c.blank()
            cv2.rectangle(pole, (int(x), top), (int(x) + pole_w - 1, y), 1, -1)
            c.paint(pole, POLE, look.pole, grain=5)
            if rng.random() < 0.85:
                paint_sign(c, rng, int(x) + pole_w // 2, top, max(4, int(0.06 * rw)))


def paint_sign(c: SceneCanvas, rng: np.random.Generator, x: int, y: int, r: int) -> None:
    """A traffic sign of one of :data:`SIGN_STYLES` centred at (x, y) with radius ``r``."""
    style = SIGN_STYLES[int(rng.integers(len(SIGN_STYLES)))]
    face, inner = c.blank(), c.blank()
    if style.endswith('circle'):
        cv2.circle(face, (x, y), r, 1, -1)
        cv2.circle(inner, (x, y), max(1, r - 2), 1, -1)
    elif style in ('warning', 'yield'):
        s = -1 if style == 'yield' else 1
        tri = np.array([[x - r, y + s * r], [x + r, y + s * r], [x, y - s * r]], np.int32)
        cv2.fillPoly(face, [tri], 1)
        cv2.fillPoly(inner, [((tri - [x, y]) * 0.55 + [x, y]).astype(np.int32)], 1)
    else:
        cv2.rectangle(face, (x - r, y - r // 2 - 1), (x + r, y + r // 2 + 1), 1, -1)
        cv2.rectangle(inner, (x - r + 2, y - r // 2 + 1), (x + r - 2, y + r // 2 - 1), 1, -1)
    border = (face > 0) & (inner == 0)
    colours = {
        'red_circle': ((200, 30, 30), (235, 235, 235)),
        'blue_circle': ((235, 235, 235), (30, 70, 190)),
        'warning': ((200, 30, 30), (240, 220, 60)),
        'yield': ((200, 30, 30), (240, 240, 240)),
        'blue_rect': ((235, 235, 235), (30, 70, 190)),
        'green_rect': ((235, 235, 235), (30, 120, 60))
    }[style]
    c.paint(face, SIGN, jitter(rng, colours[1], 10), grain=5)
    c.paint(border, SIGN, jitter(rng, colours[0], 10), grain=5)
