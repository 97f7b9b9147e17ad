"""Seg-Zero's data preprocessor: the processors of the reasoner and segmenter normalise.

Qwen2.5-VL's image processor (patches of the canvas) and SAM 2's (1024 x 1024 resize and
normalisation) take RGB arrays, so this preprocessor only turns the packed (3, H, W) uint8
tensors back into (H, W, 3) arrays; the models move their own inputs to the device.
"""
import numpy as np
from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS


@MODELS.register_module()
class SegZeroDataPreProcessor(BaseDataPreprocessor):
    """``inputs`` -> ``dict(canvas=[S x S x 3], image=[H x W x 3])`` RGB uint8 arrays."""

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs, samples = data['inputs'], data['data_samples']
        if not isinstance(inputs, dict):  # a list of per-sample dicts
            inputs = {key: [i[key] for i in inputs] for key in ('canvas', 'image')}

        def hwc(img) -> np.ndarray:
            return np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy())

        return dict(
            inputs={key: [hwc(img) for img in inputs[key]]
                    for key in ('canvas', 'image')},
            data_samples=samples)
