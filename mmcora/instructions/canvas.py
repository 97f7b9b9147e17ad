"""The reasoner's square canvas and the original image: coordinates in both directions.

Seg-Zero's reasoner sees every image resized to an 840 x 840 canvas (840 = 30 x 28, so
Qwen2.5-VL's ``smart_resize`` keeps it: 900 image tokens) and answers in canvas pixels; the
segmenter gets the original image, so boxes and points go back with
``round(int(v) * W / 840)`` as Seg-Zero's ``infer.py`` maps them.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

SEG_ZERO_CANVAS = 840


@dataclass(frozen=True)
class CanvasTransform:
    """Maps between an (H, W) image and the reasoner's ``canvas`` x ``canvas`` square.

    Args:
        height (int): H of the original image.
        width (int): W of the original image.
        canvas (int): Side of the square the reasoner sees (Seg-Zero: 840).
    """
    height: int
    width: int
    canvas: int = SEG_ZERO_CANVAS

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0 or self.canvas <= 0:
            raise ValueError(f'CanvasTransform needs positive sizes, got height={self.height} '
                             f'width={self.width} canvas={self.canvas}')

    @property
    def x_factor(self) -> float:
        """W / canvas: canvas x -> original x."""
        return self.width / self.canvas

    @property
    def y_factor(self) -> float:
        """H / canvas: canvas y -> original y."""
        return self.height / self.canvas

    def point_to_original(self, point: Sequence[float]) -> Tuple[int, int]:
        """Canvas (x, y) -> original (x, y), as Seg-Zero: ``round(int(v) * factor)``,
        clamped to the image.

        Args:
            point (Sequence[float]): (x, y) on the canvas.

        Returns:
            tuple[int, int]: (x, y) in original pixels.
        """
        x = round(int(point[0]) * self.x_factor)
        y = round(int(point[1]) * self.y_factor)
        return min(max(x, 0), self.width - 1), min(max(y, 0), self.height - 1)

    def point_to_canvas(self, point: Sequence[float]) -> Tuple[int, int]:
        """Original (x, y) -> canvas (x, y), the nearest canvas pixel, clamped.

        Args:
            point (Sequence[float]): (x, y) in original pixels.

        Returns:
            tuple[int, int]: (x, y) on the canvas.
        """
        x = round(point[0] / self.x_factor)
        y = round(point[1] / self.y_factor)
        return min(max(x, 0), self.canvas - 1), min(max(y, 0), self.canvas - 1)

    def box_to_original(self, box: Sequence[float]) -> Tuple[int, int, int, int]:
        """Canvas (x1, y1, x2, y2) -> original, corner by corner.

        Args:
            box (Sequence[float]): (x1, y1, x2, y2) on the canvas.

        Returns:
            tuple[int, int, int, int]: The box in original pixels.
        """
        return (*self.point_to_original(box[:2]), *self.point_to_original(box[2:]))

    def box_to_canvas(self, box: Sequence[float]) -> Tuple[int, int, int, int]:
        """Original (x1, y1, x2, y2) -> canvas, corner by corner.

        Args:
            box (Sequence[float]): (x1, y1, x2, y2) in original pixels.

        Returns:
            tuple[int, int, int, int]: The box on the canvas.
        """
        return (*self.point_to_canvas(box[:2]), *self.point_to_canvas(box[2:]))
