"""Rendering of one synthetic street scene for the toy city (see :mod:`.toy_city`).

A forward-facing camera looks down a street: sky, building blocks with windows, terrain,
sidewalks and a road converging at a vanishing point, trees, poles with traffic signs, and
thing objects (cars, trucks, buses from behind; people; riders on bicycles and parked
bicycles from the side). Objects stand on the ground plane: the lower an object's ground
contact in the image, the nearer and larger it is, and nearer objects are painted over farther
ones, so "in front of / behind" follows from the ground contact as in a real camera frame.
Objects of one class never touch, so the connected components of a class mask are its
instances. The ego vehicle's hood at the bottom is void (255), as in Cityscapes.
"""
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, TERRAIN, SKY = 0, 1, 2, 5, 7, 8, 9, 10
PERSON, RIDER, CAR, TRUCK, BUS, BICYCLE = 11, 12, 13, 14, 15, 18
VOID = 255
THING_CLASSES = (PERSON, RIDER, CAR, TRUCK, BUS, BICYCLE)
# Cityscapes labelIds of the trainIds used here; void is the ego vehicle (labelId 1).
LABEL_IDS = {ROAD: 7, SIDEWALK: 8, BUILDING: 11, POLE: 17, SIGN: 20, VEGETATION: 21,
             TERRAIN: 22, SKY: 23, PERSON: 24, RIDER: 25, CAR: 26, TRUCK: 27, BUS: 28,
             BICYCLE: 33, VOID: 1}

Box = Tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive-exclusive)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of shape (h, w): a random grid upsampled bilinearly."""
    grid = rng.uniform(-1, 1, size=(cells + 1, 2 * cells + 1)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)


class SceneCanvas:
    """Image, trainId map and per-class instance map painted together.

    Args:
        rng: Generator for textures.
        h: Height in pixels.
        w: Width in pixels.
    """

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.image = np.zeros((h, w, 3), np.float32)
        self.labels = np.full((h, w), VOID, np.uint8)
        self.instances = np.zeros((h, w), np.int32)
        self.count = {c: 0 for c in THING_CLASSES}
        self.thing_boxes: List[Tuple[int, Box]] = []

    def blank(self) -> np.ndarray:
        return np.zeros((self.h, self.w), np.uint8)

    def paint(self, mask: np.ndarray, train_id: int, colour, grain: float = 8.0,
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

    def new_instance(self, train_id: int, box: Box) -> int:
        self.count[train_id] += 1
        self.thing_boxes.append((train_id, box))
        return self.count[train_id]

    def is_free(self, train_id: int, box: Box, margin: int = 2) -> bool:
        """Whether ``box`` keeps ``margin`` pixels from every painted object of its class."""
        x0, y0, x1, y1 = box
        for other_id, (a0, b0, a1, b1) in self.thing_boxes:
            if other_id == train_id and not (x1 + margin <= a0 or a1 + margin <= x0 or
                                             y1 + margin <= b0 or b1 + margin <= y0):
                return False
        return True


class StreetGeometry:
    """Ground plane of the scene: horizon, vanishing point, road and sidewalk edges."""

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.horizon = int(h * rng.uniform(0.38, 0.5))
        self.vx = w * rng.uniform(0.38, 0.62)
        self.road_half = w * rng.uniform(0.36, 0.5)  # half road width at the bottom row
        self.walk_half = self.road_half * rng.uniform(1.7, 2.2)

    def depth(self, y: float) -> float:
        """0 at the horizon, 1 at the bottom row."""
        return (y - self.horizon) / (self.h - self.horizon)

    def road_span(self, y: float) -> Tuple[float, float]:
        d = self.road_half * self.depth(y)
        return self.vx - d, self.vx + d

    def walk_span(self, y: float) -> Tuple[float, float]:
        d = self.walk_half * self.depth(y)
        return self.vx - d, self.vx + d

    def wedge(self, half: float) -> np.ndarray:
        return np.array([[self.vx, self.horizon], [self.vx - half, self.h],
                         [self.vx + half, self.h]], np.int32)


def _poly(canvas: SceneCanvas, points) -> np.ndarray:
    mask = canvas.blank()
    cv2.fillPoly(mask, [np.asarray(points, np.int32).reshape(-1, 2)], 1)
    return mask


def paint_background(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator) -> None:
    """Sky, building blocks, terrain, sidewalk and road."""
    h, w = c.h, c.w
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top, low = ((np.array([70, 120, 200]), np.array([185, 210, 235])) if rng.random() < 0.7 else
                (np.array([150, 150, 160]), np.array([205, 205, 210])))  # clear or overcast
    sky = top * (1 - rows) + low * rows + 25 * smooth_noise(rng, h, w, 3)[..., None]
    c.paint(np.ones((h, w), np.uint8), SKY, np.broadcast_to(sky, (h, w, 3)), grain=3)

    x = -int(rng.integers(0, w // 10))
    while x < w:
        bw = int(w * rng.uniform(0.08, 0.24))
        if rng.random() < 0.85:
            top_y = int(g.horizon - h * rng.uniform(0.12, 0.4))
            box = (x, max(top_y, 0), x + bw, g.horizon + 2)
            base = rng.choice([[120, 120, 125], [160, 145, 120], [140, 85, 70], [180, 175, 165],
                               [95, 110, 100]]) + rng.uniform(-15, 15, 3)
            facade = _poly(c, [(box[0], box[1]), (box[2], box[1]), (box[2], box[3]),
                               (box[0], box[3])])
            texture = np.broadcast_to(base, (h, w, 3)).copy()
            step = max(4, bw // 4)
            for wx in range(box[0] + 2, box[2] - 3, step):
                for wy in range(box[1] + 3, box[3] - 4, max(5, step)):
                    cv2.rectangle(texture, (wx, wy), (wx + step // 2, wy + step // 2),
                                  (60, 70, 90), -1)
            c.paint(facade, BUILDING, texture, grain=5)
        x += bw

    ground = np.zeros((h, w), np.uint8)
    ground[g.horizon:] = 1
    grass = np.array([95, 130, 60]) + 30 * smooth_noise(rng, h, w, 12)[..., None]
    c.paint(ground, TERRAIN, grass, grain=10)
    tiles = np.array(rng.choice([[170, 170, 165], [175, 140, 130]]), np.float32)
    walk_tex = np.broadcast_to(tiles, (h, w, 3)).copy()
    walk_tex[::6] *= 0.8
    walk_tex[:, ::9] *= 0.85
    c.paint(_poly(c, g.wedge(g.walk_half)), SIDEWALK, walk_tex, grain=6)
    asphalt = np.array([80, 80, 85]) + 12 * smooth_noise(rng, h, w, 20)[..., None]
    road = _poly(c, g.wedge(g.road_half))
    c.paint(road, ROAD, asphalt, grain=9)
    marks = c.blank()
    for y in range(g.horizon + 2, h, 8):  # dashed centre line, still road
        y1 = min(y + 4, h - 1)
        cv2.line(marks, (int(g.vx), y), (int(g.vx), y1), 1, max(1, int(3 * g.depth(y1))))
    c.paint(marks & road, ROAD, [225, 225, 215], grain=6)


def _ground_y(g: StreetGeometry, rng: np.random.Generator, near: float = 1.0) -> int:
    """A ground-contact row between 20 % depth and ``near`` of the way to the bottom."""
    return int(g.horizon + (g.h - g.horizon) * rng.uniform(0.2, near))


def paint_trees_and_poles(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator) -> None:
    items = [('tree', _ground_y(g, rng, 0.7)) for _ in range(rng.integers(1, 4))]
    items += [('pole', _ground_y(g, rng, 0.8)) for _ in range(rng.integers(1, 3))]
    for kind, y in sorted(items, key=lambda item: item[1]):
        lo, hi = g.walk_span(y)
        r_lo, r_hi = g.road_span(y)
        x = rng.uniform(lo, r_lo) if rng.random() < 0.5 else rng.uniform(r_hi, hi)
        s = g.depth(y) * g.h
        if kind == 'tree':
            trunk = c.blank()
            cv2.rectangle(trunk, (int(x - 0.02 * s), int(y - 0.5 * s)), (int(x + 0.02 * s), y),
                          1, -1)
            crown = c.blank()
            for _ in range(4):
                cx = int(x + rng.uniform(-0.15, 0.15) * s)
                cy = int(y - s * rng.uniform(0.55, 0.8))
                cv2.ellipse(crown, (cx, cy), (int(0.14 * s) + 1, int(0.11 * s) + 1), 0, 0, 360,
                            1, -1)
            leaves = np.array([50, 105, 40]) + 35 * smooth_noise(rng, c.h, c.w, 40)[..., None]
            c.paint(trunk, VEGETATION, [90, 65, 40], grain=6)
            c.paint(crown, VEGETATION, leaves, grain=14)
        else:
            pole = c.blank()
            top = int(y - 0.55 * s)
            cv2.rectangle(pole, (int(x), top), (int(x + max(1, 0.015 * s)), y), 1, -1)
            c.paint(pole, POLE, [110, 110, 115], grain=5)
            sign = c.blank()
            r = max(2, int(0.05 * s))
            if rng.random() < 0.5:
                cv2.circle(sign, (int(x), top), r, 1, -1)
            else:
                cv2.fillPoly(sign, [np.array([[x - r, top + r], [x + r, top + r], [x, top - r]],
                                             np.int32)], 1)
            c.paint(sign, SIGN, rng.choice([[200, 30, 30], [30, 70, 190], [230, 200, 40]]))


def _vehicle(c: SceneCanvas, box: Box, train_id: int, colour, inst: int) -> None:
    """Rear view: body, cabin window, wheels, tail lights; a bus gets a window band."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    body = c.blank()
    cabin = y0 + (bh // 3 if train_id == CAR else 0)
    cv2.rectangle(body, (x0, cabin), (x1 - 1, y1 - max(1, bh // 8)), 1, -1)
    if train_id == CAR:
        cv2.fillPoly(body, [np.array([[x0 + bw // 6, cabin], [x1 - bw // 6, cabin],
                                      [x1 - bw // 4, y0], [x0 + bw // 4, y0]], np.int32)], 1)
    wheels = c.blank()
    wy = y1 - max(1, bh // 8)
    for wx in (x0, x1 - max(2, bw // 6)):
        cv2.rectangle(wheels, (wx, wy - 1), (wx + max(2, bw // 6), y1 - 1), 1, -1)
    c.paint(body | wheels, train_id, colour, grain=7, instance=inst)
    c.paint(wheels, train_id, [25, 25, 25], grain=4, instance=inst)
    glass = c.blank()
    if train_id == CAR:
        cv2.rectangle(glass, (x0 + bw // 4, y0 + max(1, bh // 10)), (x1 - bw // 4, cabin - 1), 1, -1)
    elif train_id == BUS:
        cv2.rectangle(glass, (x0 + 1, y0 + bh // 8), (x1 - 2, y0 + bh // 2), 1, -1)
    else:  # truck: a small cab window high on a cargo box
        cv2.rectangle(glass, (x0 + bw // 3, y0 + bh // 10), (x1 - bw // 3, y0 + bh // 4), 1, -1)
    c.paint(glass & body, train_id, [45, 60, 80], grain=5, instance=inst)
    lights = c.blank()
    ly = y0 + int(bh * 0.6)
    for lx in (x0 + 1, x1 - 2 - max(1, bw // 8)):
        cv2.rectangle(lights, (lx, ly), (lx + max(1, bw // 8), ly + max(1, bh // 10)), 1, -1)
    c.paint(lights & body, train_id, [200, 30, 30], grain=5, instance=inst)


def _person(c: SceneCanvas, x: int, y: int, height: int, train_id: int, inst: int,
            legs: bool = True) -> None:
    """Standing (or, for a rider, seated without legs) person with foot point (x, y)."""
    mask = c.blank()
    u = max(1, height // 8)
    head_y = y - height + u
    cv2.circle(mask, (x, head_y), u, 1, -1)
    torso_top, torso_bottom = head_y + u, y - (3 * u if legs else 0) - (0 if legs else u)
    cv2.rectangle(mask, (x - u, torso_top), (x + u, torso_bottom), 1, -1)
    if legs:
        cv2.line(mask, (x, torso_bottom), (x - u, y), 1, max(1, u // 2 + 1))
        cv2.line(mask, (x, torso_bottom), (x + u, y), 1, max(1, u // 2 + 1))
    cv2.line(mask, (x, torso_top + u // 2), (x + int(1.5 * u), torso_top + 3 * u), 1,
             max(1, u // 2))
    clothes = c.rng.uniform(20, 230, 3)
    c.paint(mask, train_id, clothes, grain=10, instance=inst)
    face = c.blank()
    cv2.circle(face, (x, head_y), u, 1, -1)
    c.paint(face & mask, train_id, [205, 165, 135], grain=6, instance=inst)


def _bicycle(c: SceneCanvas, box: Box, inst: int) -> None:
    """Side view: two wheels and a frame."""
    x0, y0, x1, y1 = box
    r = max(2, (y1 - y0) // 2)
    mask = c.blank()
    thick = max(1, r // 4)
    back, front = (x0 + r, y1 - r), (x1 - r, y1 - r)
    cv2.circle(mask, back, r, 1, thick)
    cv2.circle(mask, front, r, 1, thick)
    seat = ((back[0] + front[0]) // 2 - r // 2, y0)
    cv2.line(mask, back, seat, 1, thick)
    cv2.line(mask, seat, front, 1, thick)
    cv2.line(mask, back, ((back[0] + front[0]) // 2, back[1]), 1, thick)
    c.paint(mask, BICYCLE, c.rng.uniform(20, 220, 3), grain=6, instance=inst)


def _place(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator, train_id: int,
           size: Callable[[float], Tuple[int, int]], on_road: bool) -> Optional[Tuple[Box, int]]:
    """Choose a free box for an object standing on the road or a sidewalk; None if no room."""
    for _ in range(30):
        y = _ground_y(g, rng)
        bw, bh = size(g.road_half * 2 * g.depth(y))
        lo, hi = g.road_span(y) if on_road else g.walk_span(y)
        if not on_road:  # a sidewalk: left or right of the road
            r_lo, r_hi = g.road_span(y)
            lo, hi = (lo, r_lo - bw) if rng.random() < 0.5 else (r_hi, hi - bw)
        else:
            hi -= bw
        lo, hi = max(lo, 0), min(hi, c.w - bw - 1)
        if hi <= lo or bh < 6 or y - bh < 0:
            continue
        x = int(rng.uniform(lo, hi))
        box = (x, y - bh, x + bw, y)
        if c.is_free(train_id, box):
            return box, y
    return None


def paint_things(c: SceneCanvas, g: StreetGeometry, rng: np.random.Generator) -> None:
    """Vehicles, people, riders and bicycles, painted far to near."""
    plans = ([(CAR, True)] * int(rng.integers(2, 6)) + [(TRUCK, True)] * int(rng.random() < 0.4)
             + [(BUS, True)] * int(rng.random() < 0.35) + [(PERSON, False)] * int(rng.integers(2, 5))
             + [(RIDER, True)] * int(rng.integers(0, 3))
             + [(BICYCLE, False)] * int(rng.integers(0, 3)))
    sizes = {CAR: lambda rw: (int(rw * rng.uniform(0.2, 0.26)), int(rw * rng.uniform(0.15, 0.19))),
             TRUCK: lambda rw: (int(rw * 0.28), int(rw * rng.uniform(0.3, 0.36))),
             BUS: lambda rw: (int(rw * 0.3), int(rw * rng.uniform(0.3, 0.34))),
             PERSON: lambda rw: (int(rw * 0.07), int(rw * rng.uniform(0.18, 0.22))),
             RIDER: lambda rw: (int(rw * 0.19), int(rw * 0.27)),
             BICYCLE: lambda rw: (int(rw * 0.19), int(rw * 0.075))}
    placed = []
    for train_id, on_road in plans:
        spot = _place(c, g, rng, train_id, sizes[train_id], on_road)
        if spot is not None:
            placed.append((spot[1], train_id, spot[0]))
            # Reserve the box now so later objects of the class keep their distance.
            c.thing_boxes.append((train_id, spot[0]))
            if train_id == RIDER:
                c.thing_boxes.append((BICYCLE, spot[0]))
    c.thing_boxes.clear()
    for _, train_id, box in sorted(placed, key=lambda p: p[0]):
        x0, y0, x1, y1 = box
        if train_id in (CAR, TRUCK, BUS):
            palette = {CAR: [[200, 200, 205], [30, 30, 35], [150, 30, 30], [40, 70, 140],
                             [70, 110, 60], [120, 120, 125]],
                       TRUCK: [[220, 220, 215], [180, 120, 40], [60, 90, 60]],
                       BUS: [[230, 190, 30], [190, 40, 40], [40, 90, 170]]}[train_id]
            colour = np.array(palette[rng.integers(len(palette))]) + rng.uniform(-15, 15, 3)
            _vehicle(c, box, train_id, colour, c.new_instance(train_id, box))
        elif train_id == PERSON:
            _person(c, (x0 + x1) // 2, y1, y1 - y0, PERSON, c.new_instance(PERSON, box))
        elif train_id == BICYCLE:
            _bicycle(c, box, c.new_instance(BICYCLE, box))
        else:  # a rider seated on a bicycle of its own
            bike_box = (x0, y1 - int(0.3 * (y1 - y0)), x1, y1)
            _bicycle(c, bike_box, c.new_instance(BICYCLE, bike_box))
            _person(c, (x0 + x1) // 2, bike_box[1] + 1, int((y1 - y0) * 0.72), RIDER,
                    c.new_instance(RIDER, box), legs=False)


def paint_ego_hood(c: SceneCanvas, rng: np.random.Generator) -> None:
    """Void bonnet of the recording car along the bottom edge."""
    hood = c.blank()
    depth = int(c.h * rng.uniform(0.05, 0.09))
    cv2.ellipse(hood, (c.w // 2, c.h + depth), (int(c.w * 0.75), 2 * depth), 0, 180, 360, 1, -1)
    c.paint(hood, VOID, [35, 35, 40], grain=4)


def render_scene(rng: np.random.Generator, h: int, w: int
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one scene.

    Returns:
        image (h, w, 3) uint8 RGB; trainIds (h, w) uint8 with 255 for void; instances
        (h, w) int32: 1-based index within the pixel's thing class, 0 for stuff.
    """
    c = SceneCanvas(rng, h, w)
    g = StreetGeometry(rng, h, w)
    paint_background(c, g, rng)
    paint_trees_and_poles(c, g, rng)
    paint_things(c, g, rng)
    paint_ego_hood(c, rng)
    light = 1 + 0.12 * smooth_noise(rng, h, w, 2)[..., None]
    image = np.clip(c.image * light + rng.normal(0, 4, c.image.shape), 0, 255).astype(np.uint8)
    return image, c.labels, c.instances
