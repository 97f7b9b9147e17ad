"""Drawing masks over an image with their query texts."""
from typing import Optional, Sequence

import cv2
import numpy as np

# Distinct RGB colours, cycled over queries.
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


def draw_reasoning_masks(
        image: np.ndarray,
        masks: np.ndarray,
        texts: Sequence[str],
        alpha: float = 0.5,
        replies: Optional[Sequence[str]] = None,
        line_height: int = 18,
        boxes: Optional[Sequence[Optional[Sequence[float]]]] = None,
        points: Optional[Sequence[Optional[Sequence[Sequence[float]]]]] = None) -> np.ndarray:
    """Overlay masks in distinct colours and list the queries under the image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        masks (np.ndarray): (N, H, W) bool.
        texts (Sequence[str]): N query texts (drawn in the mask's colour).
        alpha (float): Opacity of the mask colours.
        replies (Sequence[str], optional): Optional N model answers, appended to each line.
        line_height (int): Pixels per text line in the legend.
        boxes (Sequence, optional): Per query an (x1, y1, x2, y2) box in image pixels or None
            (Seg-Zero's positional prompt), drawn as a rectangle in the query's colour.
        points (Sequence, optional): Per query a list of (x, y) points or None, drawn as
            circles.

    Returns:
        (H + legend, W, 3) uint8 RGB.
    """
    canvas = image.astype(np.float32)
    for i, mask in enumerate(masks):
        colour = np.array(PALETTE[i % len(PALETTE)], np.float32)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * colour
    canvas = np.ascontiguousarray(canvas.clip(0, 255).astype(np.uint8))
    for i, mask in enumerate(masks):
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, PALETTE[i % len(PALETTE)], 1)
    for i in range(len(texts)):
        colour = PALETTE[i % len(PALETTE)]
        box = boxes[i] if boxes else None
        if box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
        for x, y in (points[i] or []) if points else []:
            cv2.circle(canvas, (int(round(x)), int(round(y))), 3, colour, -1)
            cv2.circle(canvas, (int(round(x)), int(round(y))), 3, (255, 255, 255), 1)
    width = image.shape[1]
    legend = np.full((line_height * len(texts) + 4, width, 3), 255, np.uint8)
    scale = max(0.3, min(0.5, width / 1400))
    for i, text in enumerate(texts):
        line = f'{i + 1}. {text}' + (f' -> {replies[i]}' if replies else '')
        cv2.putText(legend, line, (4, line_height * (i + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    PALETTE[i % len(PALETTE)], 1, cv2.LINE_AA)
    return np.concatenate([canvas, legend])
