"""The frozen encoders see what they were trained on: CLIP and SAM inputs of a 2048 x 1024
image (a Cityscapes frame's size) against CLIPImageProcessor and segment-anything's
ResizeLongestSide, each fed as its own model's code feeds it."""
import numpy as np
import pytest
from segment_anything.utils.transforms import ResizeLongestSide
from transformers import CLIPImageProcessor

from mmcora.datasets.transforms import CLIPInputs, SAMResize
from mmcora.datasets.transforms.reasoning import masked_crop


def street_like(height: int = 1024, width: int = 2048) -> np.ndarray:
    """(H, W, 3) uint8 BGR with what resizing gets wrong: hard edges, thin stripes, noise."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:height, 0:width]
    img = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) * 127 // (width + height)],
                   -1).astype(np.int32)
    for _ in range(60):  # boxes of flat colour
        y0, x0 = rng.integers(0, height - 64), rng.integers(0, width - 64)
        h, w = rng.integers(8, 300), rng.integers(8, 300)
        img[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, 3)
    img[:, ::5] = 255 - img[:, ::5]  # 1-px poles every 5 columns: aliasing without a filter
    img += rng.integers(-12, 13, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def expand2square(rgb: np.ndarray, background) -> np.ndarray:
    """LLaVA-1.5's ``expand2square`` (llava/mm_utils.py), on arrays."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    out = np.empty((side, side, 3), np.uint8)
    out[...] = background
    out[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = rgb
    return out


def processor_pixels(rgb_square: np.ndarray, size: int = 336) -> np.ndarray:
    """LLaVA-1.5's CLIPImageProcessor on a square image, before rescaling: (S, S, 3) RGB."""
    processor = CLIPImageProcessor(
        size={'shortest_edge': size},
        crop_size={
            'height': size,
            'width': size
        },
        do_rescale=False,
        do_normalize=False)
    pixels = processor(rgb_square, return_tensors='np').pixel_values[0]
    return pixels.transpose(1, 2, 0)


def grey_levels(ours: np.ndarray, reference: np.ndarray) -> tuple:
    diff = np.abs(ours.astype(np.float64) - reference.astype(np.float64))
    return diff.max(), diff.mean()


@pytest.fixture(scope='module')
def image():
    return street_like()


def test_clip_image_matches_the_image_processor(image):
    processor = CLIPImageProcessor()
    background = tuple(int(x * 255) for x in processor.image_mean)
    reference = processor_pixels(expand2square(image[..., ::-1], background))
    ours = CLIPInputs(size=336).transform(dict(img=image))['clip_img'][..., ::-1]
    worst, mean = grey_levels(ours, reference)
    assert worst <= 1, f'{worst} grey levels off (mean {mean:.3f})'
    old = CLIPInputs(size=336, backend='cv2').transform(dict(img=image))['clip_img'][..., ::-1]
    old_worst, old_mean = grey_levels(old, reference)
    assert old_mean > 10 * max(mean, 0.01) and old_worst > 50  # what the frozen tower got before


def test_anchor_crop_matches_the_image_processor(image):
    mask = np.zeros(image.shape[:2], bool)
    mask[300:700, 200:1500] = True
    crop, box = masked_crop(image, mask, 336)
    assert box == (200, 300, 1500, 700)
    masked = np.where(mask[300:700, 200:1500, None], image[300:700, 200:1500], 0)
    reference = processor_pixels(expand2square(masked[..., ::-1], (0, 0, 0)))
    worst, mean = grey_levels(crop[..., ::-1], reference)
    assert worst <= 1, f'{worst} grey levels off (mean {mean:.3f})'


def test_sam_image_matches_resize_longest_side(image):
    reference = ResizeLongestSide(1024).apply_image(np.ascontiguousarray(image[..., ::-1]))
    results = SAMResize(size=1024).transform(dict(img=image))
    assert results['sam_shape'] == reference.shape[:2] == (512, 1024)
    worst, mean = grey_levels(results['sam_img'][..., ::-1], reference)
    assert worst <= 1, f'{worst} grey levels off (mean {mean:.3f})'
    old = SAMResize(size=1024, backend='cv2').transform(dict(img=image))['sam_img']
    assert grey_levels(old[..., ::-1], reference)[1] > 10 * max(mean, 0.01)


def test_unknown_backend_is_refused():
    with pytest.raises(
            ValueError, match=r"CLIPInputs: backend must be one of \('library', "
            r"'cv2'\), got 'pil'"):
        CLIPInputs(backend='pil')
    with pytest.raises(ValueError, match='SAMResize: backend must be one of'):
        SAMResize(backend='PIL')
