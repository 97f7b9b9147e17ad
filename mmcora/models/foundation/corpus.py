"""The toy foundation corpus: street scenes the toy city never trains or evaluates on.

The real foundation models were trained on web-scale data that no Cityscapes image is part
of (SA-1B for SAM, LAION/WIT for CLIP, LCS-558K and LLaVA-Instruct for LLaVA). The toy
miniature keeps that separation: its corpus is drawn from the toy generator's third seed
stream, ``default_rng([seed, 2, i])``, while the toy city's train and val scenes use the
streams 0 and 1 (:func:`mmcora.datasets.generate_toy_city`); stream 3 holds scenes for
measuring the foundation models. Scenes are rendered in memory,
never written to disk.
"""
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np

from ...datasets.toy_city_canvas import THING_CLASSES, VOID
from ...datasets.toy_city_render import render_scene

FOUNDATION_STREAM = 2  # toy city train = 0, val = 1
HELD_OUT_STREAM = 3  # scenes for measuring the foundation models, never trained on


@dataclass
class Region:
    """One segment of a scene: a thing instance or a connected piece of a stuff class.

    Attributes:
        class_id: trainId of the segment.
        mask: (H, W) bool.
        bbox: ``(x0, y0, x1, y1)`` with exclusive x1/y1.
    """
    class_id: int
    mask: np.ndarray
    bbox: Tuple[int, int, int, int]


def scene_regions(train_ids: np.ndarray, instances: np.ndarray, min_area: int = 24) -> List[Region]:
    """Instances of thing classes and connected components of stuff classes.

    Args:
        train_ids (np.ndarray): (H, W) class map (255 void).
        instances (np.ndarray): (H, W) per-class instance index (0 for stuff).
        min_area (int): Smaller segments are dropped.
    """
    regions = []
    for class_id in np.unique(train_ids).tolist():
        if class_id == VOID:
            continue
        class_mask = train_ids == class_id
        if class_id in THING_CLASSES:
            pieces = [class_mask & (instances == i) for i in np.unique(instances[class_mask])]
        else:
            count, comps = cv2.connectedComponents(class_mask.astype(np.uint8), connectivity=8)
            pieces = [comps == c for c in range(1, count)]
        for mask in pieces:
            if mask.sum() < min_area:
                continue
            ys, xs = np.nonzero(mask)
            regions.append(
                Region(
                    int(class_id), mask,
                    (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)))
    return regions


class FoundationCorpus:
    """``num_scenes`` scenes of the foundation stream, rendered once and kept in memory.

    Args:
        seed (int): Master seed of the stream.
        num_scenes (int): Scenes in the corpus.
        height (int): Image height (the toy city's by default).
        width (int): Image width.
        stream (int): Seed stream (:data:`HELD_OUT_STREAM` for held-out scenes).
    """

    def __init__(self,
                 seed: int = 0,
                 num_scenes: int = 600,
                 height: int = 128,
                 width: int = 256,
                 stream: int = FOUNDATION_STREAM) -> None:
        self.seed, self.num_scenes, self.height, self.width = seed, num_scenes, height, width
        self.stream = stream
        self._scenes: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._regions: List[List[Region]] = []

    def render(self, progress=None) -> 'FoundationCorpus':
        """Render every scene (``progress(done, total)`` after each); idempotent."""
        for index in range(len(self._scenes), self.num_scenes):
            rng = np.random.default_rng([self.seed, self.stream, index])
            image, train_ids, instances = render_scene(rng, self.height, self.width)
            self._scenes.append((image, train_ids, instances))
            self._regions.append(scene_regions(train_ids, instances))
            if progress is not None:
                progress(index + 1, self.num_scenes)
        return self

    def __len__(self) -> int:
        return self.num_scenes

    def scene(self, index: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image RGB uint8, trainIds, instance indices) of scene ``index``."""
        return self._scenes[index]

    def regions(self, index: int) -> List[Region]:
        return self._regions[index]
