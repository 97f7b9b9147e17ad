"""Transforms for semi-supervised segmentation (UniMatch): pixel-aligned weak/strong views.

Unlabeled pipeline::

    LoadImageFromFile -> LoadEmptyAnnotations -> RandomResize -> RandomCrop -> RandomFlip
    -> StrongViews -> PackSemiSegInputs(branch='unsup')

Geometric transforms run once (on the image and the empty map, which the data preprocessor's
padding turns into the ignore map); ``StrongViews`` only changes colours, so the weak view and
both strong views stay pixel-aligned and one pseudo-label serves all three.
"""
from typing import Sequence, Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS
from torchvision.transforms import ColorJitter


@TRANSFORMS.register_module()
class LoadEmptyAnnotations(BaseTransform):
    """An all-zero ``gt_seg_map`` for an unlabeled image: 'valid' everywhere.

    Geometric transforms move it with the image; padding later marks padded pixels 255, so the
    map becomes the unlabeled image's ignore mask (UniMatch's ``ignore_mask``).
    """

    def transform(self, results: dict) -> dict:
        results['gt_seg_map'] = np.zeros(results['img'].shape[:2], np.uint8)
        results['seg_map_path'] = None  # packed into the metainfo: no label map was read
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results


@TRANSFORMS.register_module()
class StrongViews(BaseTransform):
    """Make ``num_views`` photometrically perturbed copies of the image (UniMatch's strong views).

    Each view independently: ColorJitter with probability ``jitter_prob``, grayscale with
    ``gray_prob``, Gaussian blur with sigma in ``blur_sigma`` with ``blur_prob``.

    Adds ``strong_imgs``: a list of BGR uint8 images of the image's shape.
    """

    def __init__(self,
                 num_views: int = 2,
                 color_jitter: Tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.25),
                 jitter_prob: float = 0.8,
                 gray_prob: float = 0.2,
                 blur_prob: float = 0.5,
                 blur_sigma: Sequence[float] = (0.1, 2.0)) -> None:
        self.num_views = num_views
        self.jitter = ColorJitter(*color_jitter)
        self.jitter_prob, self.gray_prob, self.blur_prob = jitter_prob, gray_prob, blur_prob
        self.blur_sigma = tuple(blur_sigma)

    def _view(self, img_bgr: np.ndarray) -> np.ndarray:
        rgb = torch.from_numpy(np.ascontiguousarray(img_bgr[..., ::-1].transpose(2, 0, 1)))
        if np.random.rand() < self.jitter_prob:
            rgb = self.jitter(rgb)
        out = rgb.numpy().transpose(1, 2, 0)[..., ::-1]
        if np.random.rand() < self.gray_prob:
            gray = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2GRAY)
            out = np.repeat(gray[..., None], 3, axis=2)
        if np.random.rand() < self.blur_prob:
            sigma = np.random.uniform(*self.blur_sigma)
            out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), sigmaX=sigma)
        return np.ascontiguousarray(out)

    def transform(self, results: dict) -> dict:
        results['strong_imgs'] = [self._view(results['img']) for _ in range(self.num_views)]
        return results


@TRANSFORMS.register_module()
class PackSemiSegInputs(PackSegInputs):
    """``PackSegInputs`` that tags the branch and, for unlabeled images, stacks the views.

    Args:
        branch (str): ``'sup'`` (labeled: inputs (3, H, W)) or ``'unsup'`` (inputs (1 + V, 3, H, W):
            the weak view, then the strong views).
        **kwargs (dict): ``PackSegInputs`` arguments.
    """

    def __init__(self, branch: str, **kwargs) -> None:
        if branch not in ('sup', 'unsup'):
            raise ValueError(f"branch must be 'sup' or 'unsup', got {branch!r}")
        super().__init__(**kwargs)
        self.branch = branch

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        packed['data_samples'].set_metainfo(dict(branch=self.branch))
        if self.branch == 'unsup':
            views = [results['img']] + results.get('strong_imgs', [])
            packed['inputs'] = torch.stack(
                [torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1))) for v in views])
        return packed
