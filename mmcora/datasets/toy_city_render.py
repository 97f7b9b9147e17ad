"""Rendering of one synthetic street scene for the toy city (see :mod:`.toy_city_generator`).

A forward-facing camera at a random height looks down a street. :mod:`.toy_city_background`
paints the stuff (sky and skyline, building walls in perspective, terrain, sidewalks, road
with markings, hedges, trees, poles and traffic signs), :mod:`.toy_city_things` the things
(moving and parked vehicles, people alone and in groups, riders, bicycles in racks), with the
appearance families of :mod:`.toy_city_looks` (one draw per scene). Objects stand on the
ground plane: the lower an object's ground contact in the image, the nearer and larger it is,
and nearer objects are painted over farther ones, so "in front of / behind" follows from the
ground contact as in a real camera frame. Objects of one class may touch (parked rows, groups,
racks): the instance map separates them. The ego vehicle's hood at the bottom is void (255),
as in Cityscapes.
"""
from typing import Tuple

import cv2
import numpy as np

from .toy_city_background import (paint_sky_and_ground, paint_street, paint_vegetation_and_poles,
                                  paint_walls)
from .toy_city_canvas import (BICYCLE, BUILDING, BUS, CAR, LABEL_IDS, PERSON, POLE, RIDER, ROAD,
                              SIDEWALK, SIGN, SKY, TERRAIN, THING_CLASSES, TRUCK, VEGETATION, VOID,
                              SceneCanvas, StreetGeometry)
from .toy_city_looks import SceneLook
from .toy_city_things import paint_things


def paint_ego_hood(c: SceneCanvas, rng: np.random.Generator) -> None:
    """Void bonnet of the recording car along the bottom edge."""
    hood = c.blank()
    depth = int(c.h * rng.uniform(0.05, 0.09))
    cv2.ellipse(hood, (c.w // 2, c.h + depth), (int(c.w * 0.75), 2 * depth), 0, 180, 360, 1, -1)
    c.paint(hood, VOID, [35, 35, 40], grain=4)


def draw_street_and_look(rng: np.random.Generator, h: int,
                         w: int) -> Tuple[StreetGeometry, SceneLook]:
    """The first draws of a scene: its ground plane, then its appearance."""
    return StreetGeometry(rng, h, w), SceneLook.draw(rng)


def render_scene(rng: np.random.Generator, h: int,
                 w: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one scene.

    Returns:
        image (h, w, 3) uint8 RGB; trainIds (h, w) uint8 with 255 for void; instances
        (h, w) int32: 1-based index within the pixel's thing class, 0 for stuff.
    """
    c = SceneCanvas(rng, h, w)
    g, look = draw_street_and_look(rng, h, w)
    paint_sky_and_ground(c, g, look, rng)
    paint_walls(c, g, look, rng)
    paint_street(c, g, look, rng)
    paint_vegetation_and_poles(c, g, look, rng)
    paint_things(c, g, rng)
    paint_ego_hood(c, rng)
    return look.finish(rng, c.image, g.nearness()), c.labels, c.instances


__all__ = [
    'render_scene', 'draw_street_and_look', 'LABEL_IDS', 'THING_CLASSES', 'ROAD', 'SIDEWALK',
    'BUILDING', 'POLE', 'SIGN', 'VEGETATION', 'TERRAIN', 'SKY', 'PERSON', 'RIDER', 'CAR', 'TRUCK',
    'BUS', 'BICYCLE', 'VOID'
]
