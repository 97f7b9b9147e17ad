"""Things of a toy-city scene: vehicles, people, riders and bicycles, placed and painted.

Moving vehicles and riders keep their distance from others of their class; parked cars stand
in rows along the curb, people walk in groups and bicycles stand in racks, and inside a row,
group or rack the objects touch and occlude each other (nearer over farther). Every object
gets its own instance index, so the instance map separates what the class mask merges.
Sizes are fractions of the road width at the object's ground row (perspective).
"""
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from .toy_city_canvas import (BICYCLE, BUS, CAR, PERSON, RIDER, TRUCK, Box, SceneCanvas,
                              StreetGeometry, sidewalk_x)
from .toy_city_looks import CAR_COLOURS, SKIN_TONES, jitter

# (width, height) of each class as fractions of the road width at its ground row.
SIZES = {
    CAR: ((0.22, 0.3), (0.16, 0.2)),
    TRUCK: ((0.28, 0.34), (0.32, 0.4)),
    BUS: ((0.3, 0.36), (0.32, 0.38)),
    PERSON: ((0.08, 0.1), (0.22, 0.27)),
    RIDER: ((0.18, 0.22), (0.28, 0.32)),
    BICYCLE: ((0.18, 0.22), (0.09, 0.11))
}
# Nearness range (0 horizon, 1 bottom row) of each class's ground contact.
DEPTHS = {
    CAR: (0.15, 1.0),
    TRUCK: (0.2, 0.9),
    BUS: (0.2, 0.9),
    PERSON: (0.3, 1.0),
    RIDER: (0.3, 0.95),
    BICYCLE: (0.3, 1.0)
}
Plan = Tuple[int, int, Box]  # ground row, class, box


def object_size(g: StreetGeometry, rng: np.random.Generator, train_id: int,
                y: int) -> Tuple[int, int]:
    (w0, w1), (h0, h1) = SIZES[train_id]
    rw = g.road_width(y)
    return max(2, int(rw * rng.uniform(w0, w1))), max(4, int(rw * rng.uniform(h0, h1)))


def paint_vehicle(c: SceneCanvas, rng: np.random.Generator, box: Box, train_id: int,
                  inst: int) -> None:
    """Rear view: body (cabin for cars), windows, wheels, tail lights, plate."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    # yapf: disable  (yapf breaks a colour tuple in two)
    palette = CAR_COLOURS if train_id == CAR else (
        ((225, 225, 220), (180, 120, 40), (60, 90, 60), (40, 60, 120), (150, 30, 30))
        if train_id == TRUCK else ((230, 190, 30), (190, 40, 40), (40, 90, 170), (220, 220, 225)))
    # yapf: enable
    colour = jitter(rng, palette[int(rng.integers(len(palette)))], 15)
    body = c.blank()
    wheel_h = max(1, bh // 8)
    cabin = y0 + (int(bh * rng.uniform(0.3, 0.4)) if train_id == CAR else 0)
    cv2.rectangle(body, (x0, cabin), (x1 - 1, y1 - wheel_h), 1, -1)
    if train_id == CAR:
        inset = int(bw * rng.uniform(0.12, 0.22))
        cv2.fillPoly(body, [
            np.array([[x0 + inset // 2, cabin], [x1 - 1 - inset // 2, cabin], [x1 - 1 - inset, y0],
                      [x0 + inset, y0]], np.int32)
        ], 1)
    wheels = c.blank()
    ww = max(2, bw // 6)
    for wx in (x0, x1 - ww):
        cv2.rectangle(wheels, (wx, y1 - 2 * wheel_h), (wx + ww - 1, y1 - 1), 1, -1)
    c.paint(body | wheels, train_id, colour, grain=7, instance=inst)
    c.paint(wheels, train_id, jitter(rng, (25, 25, 25), 5), grain=4, instance=inst)
    glass = c.blank()
    if train_id == CAR:
        cv2.rectangle(glass, (x0 + bw // 4, y0 + max(1, bh // 10)), (x1 - bw // 4, cabin - 1), 1,
                      -1)
    elif train_id == BUS:
        cv2.rectangle(glass, (x0 + 1, y0 + bh // 8), (x1 - 2, y0 + int(bh * 0.45)), 1, -1)
    else:  # truck: a small cab window high on a cargo box
        cv2.rectangle(glass, (x0 + bw // 3, y0 + bh // 10), (x1 - bw // 3, y0 + bh // 4), 1, -1)
    c.paint(glass & body, train_id, jitter(rng, (45, 60, 80), 15), grain=5, instance=inst)
    lights = c.blank()
    ly, lw = y0 + int(bh * 0.6), max(1, bw // 8)
    for lx in (x0 + 1, x1 - 1 - lw):
        cv2.rectangle(lights, (lx, ly), (lx + lw - 1, ly + max(1, bh // 10)), 1, -1)
    plate = c.blank()
    cx, py = (x0 + x1) // 2, y0 + int(bh * 0.72)
    cv2.rectangle(plate, (cx - max(1, bw // 8), py), (cx + max(1, bw // 8), py + max(1, bh // 12)),
                  1, -1)
    c.paint(lights & body, train_id, jitter(rng, (200, 30, 30), 15), grain=5, instance=inst)
    c.paint(plate & body, train_id, (225, 225, 215), grain=4, instance=inst)


def paint_person(c: SceneCanvas,
                 rng: np.random.Generator,
                 x: int,
                 y: int,
                 width: int,
                 height: int,
                 train_id: int,
                 inst: int,
                 seated: bool = False) -> None:
    """A person with feet at (x, y) (or, seated, the hips): head, torso, arms, legs."""
    mask, top = c.blank(), c.blank()
    u = max(2, width // 2)  # half the torso width
    head_r = max(1, int(height * 0.08))
    head_y = y - height + head_r
    torso_top = head_y + head_r
    hips = y if seated else y - int(height * rng.uniform(0.4, 0.48))
    cv2.circle(mask, (x, head_y), head_r, 1, -1)
    cv2.rectangle(top, (x - u, torso_top), (x + u, hips), 1, -1)
    limb = max(2, u // 2 + 1)
    stride = int(u * rng.uniform(0.2, 1.4))
    for sign in (-1, 1):  # arms swing with the stride
        cv2.line(top, (x + sign * u, torso_top + 1),
                 (x + sign * (u + stride // 2), torso_top + int(0.6 * (hips - torso_top))), 1, limb)
    legs = c.blank()
    if not seated:
        for sign in (-1, 1):
            cv2.line(legs, (x + sign * (u // 2), hips), (x + sign * stride, y - 1), 1, limb)
    c.paint(
        mask | top | legs,
        train_id,
        jitter(rng, rng.uniform(20, 230, 3), 5),
        grain=10,
        instance=inst)
    c.paint(legs, train_id, jitter(rng, rng.uniform(20, 200, 3), 5), grain=8, instance=inst)
    c.paint(
        mask,
        train_id,
        jitter(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 10),
        grain=6,
        instance=inst)


def paint_bicycle(c: SceneCanvas, rng: np.random.Generator, box: Box, inst: int) -> None:
    """Side view: two wheels, frame, saddle and handlebar."""
    x0, y0, x1, y1 = box
    r = max(2, (y1 - y0) // 2)
    thick = max(2, r // 3)
    mask = c.blank()
    back, front = (x0 + r, y1 - r), (x1 - r, y1 - r)
    cv2.circle(mask, back, r, 1, thick)
    cv2.circle(mask, front, r, 1, thick)
    mid = ((back[0] + front[0]) // 2, back[1])
    seat = (mid[0] - r // 2, y0)
    for a, b in ((back, seat), (seat, front), (back, mid), (mid, seat)):
        cv2.line(mask, a, b, 1, thick)
    cv2.line(mask, front, (front[0] - r // 3, y0), 1, thick)
    c.paint(mask, BICYCLE, jitter(rng, rng.uniform(20, 220, 3), 5), grain=6, instance=inst)


def _free_box(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator, train_id: int,
              on_road: bool) -> Optional[Box]:
    """A free box for a single object on the road or a sidewalk; None if there is no room."""
    for _ in range(30):
        y = g.row(rng.uniform(*DEPTHS[train_id]))
        bw, bh = object_size(g, rng, train_id, y)
        if on_road:
            lo, hi = g.road_span(y)
            x = rng.uniform(lo, hi - bw) if hi - bw > lo else lo
        else:
            x = sidewalk_x(g, rng, y, bw, -1 if rng.random() < 0.5 else 1)
        x = int(min(max(x, 0), c.w - bw - 1))
        box = (x, y - bh, x + bw, y)
        if bh >= 6 and y - bh >= 0 and c.is_free(train_id, box):
            return box
    return None


def _touching(g: StreetGeometry, rng: np.random.Generator, train_id: int, count: int,
              start: Callable[[int, int],
                              float], spacing: Tuple[float, float], recede: bool) -> List[Plan]:
    """``count`` objects of one class that touch: a receding row or a side-by-side group."""
    y = g.row(rng.uniform(max(0.45, DEPTHS[train_id][0]), DEPTHS[train_id][1]))
    bw, bh = object_size(g, rng, train_id, y)
    x = start(y, bw)
    plans = []
    for _ in range(count):
        if y - bh < 0 or bh < 6:
            break
        plans.append((y, train_id, (int(x), y - bh, int(x) + bw, y)))
        if recede:  # the next one stands behind, along the curb, smaller
            y -= max(2, int(bh * rng.uniform(0.35, 0.6)))
            if g.depth(y) < 0.1:
                break
            bw, bh = object_size(g, rng, train_id, y)
            x = start(y, bw)
        else:
            x += bw * rng.uniform(*spacing)
            y += int(rng.integers(-1, 2))
    return plans


def plan_things(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator) -> List[Plan]:
    """Decide every thing of the scene; each plan is (ground row, class, box)."""
    plans: List[Plan] = []
    side = -1 if rng.random() < 0.5 else 1
    if rng.random() < 0.75:  # a row of parked cars along one curb

        def curb(y: int, bw: int) -> float:
            lo, hi = g.road_span(y)
            return lo + 1 if side < 0 else hi - bw - 1

        plans += _touching(g, rng, CAR, int(rng.integers(2, 5)), curb, (0, 0), recede=True)
    for _ in range(int(rng.integers(0, 3))):  # groups of two to four people
        group_side = -1 if rng.random() < 0.5 else 1
        plans += _touching(
            g,
            rng,
            PERSON,
            int(rng.integers(2, 5)),
            lambda y, bw, s=group_side: sidewalk_x(g, rng, y, 3 * bw, s), (0.55, 0.95),
            recede=False)
    if rng.random() < 0.4:  # a bicycle rack
        plans += _touching(
            g,
            rng,
            BICYCLE,
            int(rng.integers(2, 4)),
            lambda y, bw: sidewalk_x(g, rng, y, 2 * bw, -side), (0.5, 0.8),
            recede=False)
    for _, train_id, box in plans:
        c.reserved.append((train_id, box))
    singles = ([(CAR, True)] * int(rng.integers(1, 4)) + [(TRUCK, True)] * int(rng.random() < 0.4) +
               [(BUS, True)] * int(rng.random() < 0.35) +
               [(PERSON, False)] * int(rng.integers(1, 4)) +
               [(RIDER, True)] * int(rng.integers(0, 3)) +
               [(BICYCLE, False)] * int(rng.integers(0, 2)))
    for train_id, on_road in singles:
        box = _free_box(c, g, rng, train_id, on_road)
        if box is not None:
            plans.append((box[3], train_id, box))
            c.reserved.append((train_id, box))
            if train_id == RIDER:  # its bicycle keeps other bicycles away too
                c.reserved.append((BICYCLE, box))
    return plans


def paint_things(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator) -> None:
    """Plan, then paint far to near so that nearer objects occlude farther ones."""
    for _, train_id, box in sorted(plan_things(c, g, rng), key=lambda p: p[0]):
        x0, y0, x1, y1 = box
        if train_id in (CAR, TRUCK, BUS):
            paint_vehicle(c, rng, box, train_id, c.new_instance(train_id))
        elif train_id == PERSON:
            paint_person(c, rng, (x0 + x1) // 2, y1, x1 - x0, y1 - y0, PERSON,
                         c.new_instance(PERSON))
        elif train_id == BICYCLE:
            paint_bicycle(c, rng, box, c.new_instance(BICYCLE))
        else:  # a rider seated on a bicycle of its own
            bike = (x0, y1 - int(0.35 * (y1 - y0)), x1, y1)
            paint_bicycle(c, rng, bike, c.new_instance(BICYCLE))
            paint_person(
                c,
                rng, (x0 + x1) // 2,
                bike[1] + 1,
                max(3, (x1 - x0) // 3),
                int((y1 - y0) * 0.7),
                RIDER,
                c.new_instance(RIDER),
                seated=True)
