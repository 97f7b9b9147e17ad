"""Normalise and pad the SAM and CLIP branches on the device."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS

from .sam import SAM_PIXEL_MEAN, SAM_PIXEL_STD

# OpenAI CLIP's statistics; CORASegmentor replaces them with its LLaVA's processor config.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@MODELS.register_module()
class ReasoningDataPreProcessor(BaseDataPreprocessor):
    """Turn packed uint8 BGR inputs into the model's two image batches.

    ``inputs['sam']``: each image (3, h', w') -> RGB, ``(x - mean) / std`` with SAM's pixel
    statistics, zero-padded at the right and bottom to ``sam_size`` squared (B, 3, S, S).
    ``inputs['clip']`` and every sample's ``anchor_crops``: RGB, scaled to [0, 1] and
    normalised with CLIP's statistics.

    Args:
        sam_size (int, optional): Side of SAM's square input; None takes the model's SAM
            ``img_size`` (set by the segmentor).
        sam_mean, sam_std (Sequence[float]): SAM pixel statistics (0-255 RGB).
        clip_mean, clip_std (Sequence[float]): CLIP statistics ([0, 1] RGB); the segmentor sets them
            from its LLaVA's ``preprocessor_config.json``.
    """

    def __init__(self,
                 sam_size: Optional[int] = None,
                 sam_mean: Sequence[float] = SAM_PIXEL_MEAN,
                 sam_std: Sequence[float] = SAM_PIXEL_STD,
                 clip_mean: Sequence[float] = CLIP_MEAN,
                 clip_std: Sequence[float] = CLIP_STD,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        self.sam_size = sam_size
        for name, value in (('sam_mean', sam_mean), ('sam_std', sam_std), ('clip_mean', clip_mean),
                            ('clip_std', clip_std)):
            self.register_buffer(name, torch.tensor(value).view(-1, 1, 1), persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs, samples = data['inputs'], data['data_samples']
        if isinstance(inputs, dict):  # pseudo_collate: dict of lists
            sam_list, clip_list = inputs['sam'], inputs['clip']
        else:  # a list of per-sample dicts
            sam_list = [i['sam'] for i in inputs]
            clip_list = [i['clip'] for i in inputs]
        sam = torch.stack([
            self._sam(img, s.metainfo.get('img_path', f'image {i}'))
            for i, (img, s) in enumerate(zip(sam_list, samples))
        ])
        clip = torch.stack([self.normalize_clip(img) for img in clip_list])
        for sample in samples:
            if 'anchor_crops' in sample:
                sample.anchor_crops = self.normalize_clip(sample.anchor_crops)
        return dict(inputs=dict(sam=sam, clip=clip), data_samples=samples)

    def set_clip_statistics(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.clip_mean.copy_(torch.tensor(mean).view(-1, 1, 1))
        self.clip_std.copy_(torch.tensor(std).view(-1, 1, 1))

    def _sam(self, img: torch.Tensor, name: str) -> torch.Tensor:
        img = (img.flip(0).float() - self.sam_mean) / self.sam_std
        h, w = img.shape[-2:]
        if max(h, w) > self.sam_size:
            raise ValueError(f'{name}: SAM input {h}x{w} exceeds sam_size {self.sam_size}; the '
                             'pipeline\'s SAMResize size must equal the model\'s SAM img_size')
        return F.pad(img, (0, self.sam_size - w, 0, self.sam_size - h))

    def normalize_clip(self, img: torch.Tensor) -> torch.Tensor:
        """(..., 3, S, S) BGR uint8 -> RGB, CLIP-normalised float."""
        return (img.flip(-3).float() / 255 - self.clip_mean) / self.clip_std
