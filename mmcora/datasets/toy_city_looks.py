"""Appearance of a toy-city scene: material families, textures and the weather of one scene.

Every class has several *families* of appearance (brick, concrete, glass and plaster facades;
dark, faded, cobbled and wet roads; clear, overcast, sunset and dusk skies; green, dry and
bare ground; summer and autumn trees; ...). A scene draws one family per stuff class (two or
three for its buildings), a global light (brightness, colour cast, contrast), fog that grows
with distance and a sensor noise level. With 6 x 5 x 4 x ... combinations, the 8 labeled
images of the 1/30 partition see only a few of them, while the 240 training images see them
all: labels, not capacity, limit what a segmenter learns (the property the semi-supervised
figures need). Colour ranges overlap across classes (grey roads, poles, cars and concrete;
green grass, trees and cars), so colour alone does not give the class.
"""
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import cv2
import numpy as np

RGB = Tuple[float, float, float]

SKY_FAMILIES = ('clear', 'overcast', 'sunset', 'dusk', 'hazy')
FACADE_FAMILIES = ('brick', 'concrete', 'glass', 'plaster', 'stone', 'dark')
ROAD_FAMILIES = ('asphalt', 'faded', 'cobble', 'wet', 'red')
WALK_FAMILIES = ('grey_tiles', 'pavers', 'concrete', 'slabs')
TERRAIN_FAMILIES = ('grass', 'dry', 'dirt', 'gravel')
FOLIAGE_FAMILIES = ('summer', 'dark', 'autumn', 'blossom')
POLE_COLOURS: Tuple[RGB, ...] = ((120, 120, 125), (45, 70, 55), (35, 35, 38), (150, 140, 120))
SIGN_STYLES = ('red_circle', 'blue_circle', 'warning', 'yield', 'blue_rect', 'green_rect')
SKIN_TONES: Tuple[RGB, ...] = ((235, 195, 165), (205, 160, 125), (160, 110, 80), (100, 70, 50))
CAR_COLOURS: Tuple[RGB, ...] = ((215, 215, 220), (30, 30, 35), (160, 160, 165), (150, 30, 30),
                                (40, 70, 140), (60, 100, 60), (200, 170, 40), (110, 80, 55),
                                (90, 95, 100), (170, 60, 120))


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of shape (h, w): a random grid upsampled bilinearly."""
    grid = rng.uniform(-1, 1, size=(cells + 1, 2 * cells + 1)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)


def jitter(rng: np.random.Generator, colour: Sequence[float], amount: float = 15) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def flat(colour: Sequence[float], h: int, w: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy()


def grid_lines(texture: np.ndarray,
               colour: Sequence[float],
               step_y: int,
               step_x: int,
               stagger: bool = False) -> np.ndarray:
    """Draw mortar or seam lines every ``step_y`` rows and ``step_x`` columns (in place)."""
    h, w = texture.shape[:2]
    colour = np.asarray(colour, np.float32)
    texture[::step_y] = colour
    for row in range(0, h, step_y):
        shift = step_x // 2 if stagger and (row // step_y) % 2 else 0
        texture[row:row + step_y, shift::step_x] = colour
    return texture


def sky_texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    top, low = {
        'clear': ((60, 110, 200), (175, 205, 235)),
        'overcast': ((150, 150, 160), (200, 200, 205)),
        'sunset': ((70, 60, 130), (240, 150, 80)),
        'dusk': ((20, 25, 55), (80, 75, 110)),
        'hazy': ((190, 190, 180), (215, 210, 195))
    }[family]
    sky = jitter(rng, top) * (1 - rows) + jitter(rng, low) * rows
    clouds = np.clip(smooth_noise(rng, h, w, 4), 0, 1)[..., None]
    cloud_colour = {'dusk': 60, 'sunset': 200}.get(family, 225)
    amount = rng.uniform(0, 0.7) if family != 'hazy' else 0.2
    return sky * (1 - amount * clouds) + cloud_colour * amount * clouds


def facade_texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    """A facade material without windows (windows are drawn in the wall's perspective)."""
    if family == 'brick':
        tex = flat(jitter(rng, (150, 70, 50), 20), h, w)
        tex = grid_lines(tex, jitter(rng, (185, 175, 160)), 3, 6, stagger=True)
    elif family == 'concrete':
        tex = flat(jitter(rng, (150, 150, 145), 25), h, w)
        tex = grid_lines(tex, tex[0, 0] * 0.75, int(rng.integers(8, 14)), int(rng.integers(10, 20)))
    elif family == 'glass':
        tex = flat(jitter(rng, (85, 115, 145), 20), h, w)
        tex += 40 * smooth_noise(rng, h, w, 3)[..., None]
        tex = grid_lines(tex, jitter(rng, (60, 60, 65)), int(rng.integers(4, 7)),
                         int(rng.integers(4, 8)))
    elif family == 'plaster':
        hue = rng.uniform(0, 180)
        pastel = cv2.cvtColor(
            np.uint8([[[hue, rng.uniform(40, 110), rng.uniform(190, 240)]]]), cv2.COLOR_HSV2RGB)[0,
                                                                                                 0]
        tex = flat(pastel, h, w) + 10 * smooth_noise(rng, h, w, 6)[..., None]
    elif family == 'stone':
        tex = flat(jitter(rng, (165, 150, 125), 20), h, w)
        tex = grid_lines(tex, tex[0, 0] * 0.8, 5, 9, stagger=True)
    else:  # dark
        tex = flat(jitter(rng, (65, 62, 60), 12), h, w)
    return tex


def window_colour(rng: np.random.Generator, family: str) -> np.ndarray:
    if family == 'glass':
        return jitter(rng, (150, 180, 200), 25)
    return jitter(rng, (230, 200, 110) if rng.random() < 0.3 else (45, 55, 75), 15)


def road_texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    base = {
        'asphalt': (75, 75, 80),
        'faded': (125, 123, 120),
        'cobble': (110, 95, 85),
        'wet': (45, 48, 55),
        'red': (115, 80, 75)
    }[family]
    tex = flat(jitter(rng, base, 10), h, w) + 12 * smooth_noise(rng, h, w, 20)[..., None]
    if family == 'cobble':
        tex = grid_lines(tex, tex[0, 0] * 0.7, 3, 4, stagger=True)
    elif family == 'wet':  # the sky reflected in puddles
        tex += 45 * np.clip(smooth_noise(rng, h, w, 8), 0, 1)[..., None]
    return tex


def walk_texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    base = {
        'grey_tiles': (170, 170, 165),
        'pavers': (165, 105, 90),
        'concrete': (190, 180, 160),
        'slabs': (115, 115, 118)
    }[family]
    tex = flat(jitter(rng, base, 12), h, w)
    step = int(rng.integers(4, 9))
    return grid_lines(
        tex, tex[0, 0] * 0.78, step, step + int(rng.integers(0, 4)), stagger=family == 'pavers')


def terrain_texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    base = {
        'grass': (95, 135, 60),
        'dry': (170, 150, 90),
        'dirt': (120, 95, 70),
        'gravel': (145, 138, 128)
    }[family]
    tex = flat(jitter(rng, base, 15), h, w) + 30 * smooth_noise(rng, h, w, 12)[..., None]
    if family == 'gravel':
        tex += rng.normal(0, 18, (h, w, 1))
    return tex


def foliage_texture(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    base = {
        'summer': (55, 110, 40),
        'dark': (30, 65, 40),
        'autumn': (185, 105, 35),
        'blossom': (200, 150, 170)
    }[family]
    return flat(jitter(rng, base, 15), h, w) + 40 * smooth_noise(rng, h, w, 40)[..., None]


@dataclass
class SceneLook:
    """The appearance choices of one scene (drawn by :meth:`draw`)."""
    sky: str
    facades: List[str]
    road: str
    walk: str
    terrain: str
    foliage: str
    pole: np.ndarray
    marking: np.ndarray
    brightness: float = 1.0
    cast: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    contrast: float = 1.0
    fog: float = 0.0
    noise: float = 4.0
    blur: bool = False

    @classmethod
    def draw(cls, rng: np.random.Generator) -> 'SceneLook':

        def pick(options):
            return options[int(rng.integers(len(options)))]

        sky = pick(SKY_FAMILIES)
        count = int(rng.integers(2, 4))
        facades = [
            FACADE_FAMILIES[i] for i in rng.choice(len(FACADE_FAMILIES), count, replace=False)
        ]
        dark = sky == 'dusk'
        return cls(
            sky=sky,
            facades=facades,
            road=pick(ROAD_FAMILIES),
            walk=pick(WALK_FAMILIES),
            terrain=pick(TERRAIN_FAMILIES),
            foliage=pick(FOLIAGE_FAMILIES),
            pole=jitter(rng, pick(POLE_COLOURS), 10),
            marking=jitter(rng, (230, 230, 220) if rng.random() < 0.7 else (225, 190, 40), 10),
            brightness=rng.uniform(0.55, 0.8) if dark else rng.uniform(0.8, 1.2),
            cast=rng.uniform(0.88, 1.12, 3).astype(np.float32),
            contrast=rng.uniform(0.8, 1.2),
            fog=rng.uniform(0.2, 0.5)
            if sky in ('hazy', 'overcast') and rng.random() < 0.5 else 0.0,
            noise=rng.uniform(2, 8),
            blur=bool(rng.random() < 0.25))

    def finish(self, rng: np.random.Generator, image: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Light, fog (stronger far away), noise and blur; float RGB -> uint8 RGB.

        Args:
            image (np.ndarray): (H, W, 3) float RGB.
            depth (np.ndarray): (H, W) nearness in [0, 1] (1 = nearest row), for the fog.
        """
        h, w = image.shape[:2]
        light = 1 + 0.12 * smooth_noise(rng, h, w, 2)[..., None]
        out = image * light * self.cast * self.brightness
        out = (out - 128) * self.contrast + 128
        if self.fog:
            weight = (self.fog * (1 - depth))[..., None]
            out = out * (1 - weight) + 190 * weight
        out = out + rng.normal(0, self.noise, out.shape)
        out = np.clip(out, 0, 255).astype(np.uint8)
        return cv2.GaussianBlur(out, (3, 3), 0.8) if self.blur else out
