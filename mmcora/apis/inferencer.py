"""``ReasoningSegInferencer``: image + one or many instructions -> masks and an overlay.

The inference API is kept apart from the model (as segment-anything's predictor is): it
owns the preprocessing pipeline and an encoding cache, so all queries on one image, in one
call or over several calls, reuse that image's SAM embedding and CLIP tokens.
"""
import hashlib
import os.path as osp
from typing import List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

from ..datasets.transforms import queries_of
from ..instructions.vocabulary import ANCHOR_PLACEHOLDER
from ..visualization import draw_reasoning_masks

ImageType = Union[str, np.ndarray]


class ReasoningSegInferencer:
    """Reasoning segmentation of images with free-form instructions.

    Args:
        model: Config file, ``Config`` or a built ``CORASegmentor``.
        checkpoint: Checkpoint to load into a model built from a config.
        device: Torch device; None keeps a given model where it is (and builds on the CPU).
        mode: ``'teacher_forcing'`` or ``'generate'``; None uses the model's ``test_cfg``.

    Example:
        >>> inferencer = ReasoningSegInferencer('configs/cora/toy-city_1-30_tiny.py',
        ...                                     'work_dirs/.../iter_1200.pth')
        >>> result = inferencer('street.png', ['Segment the car.', 'Segment the sky.'])
        >>> result['masks'].shape, result['visualization'].shape
    """

    def __init__(self, model: Union[str, Config, torch.nn.Module],
                 checkpoint: Optional[str] = None, device: Optional[str] = None,
                 mode: Optional[str] = None) -> None:
        init_default_scope('mmseg')
        if not isinstance(model, torch.nn.Module):
            cfg = Config.fromfile(model) if isinstance(model, str) else model
            model = MODELS.build(cfg.model)
            if checkpoint is not None:
                load_checkpoint(model, checkpoint, map_location='cpu')
        self.model = (model if device is None else model.to(device)).eval()
        self.mode = mode
        self.pipeline = Compose([
            dict(type='SAMResize', size=self.model.sam.img_size),
            dict(type='CLIPInputs', size=self.model.mllm.image_size),
            dict(type='PackReasoningInputs'),
        ])
        self._cache_key: Optional[str] = None
        self._features_cache = None

    @staticmethod
    def load_image(image: ImageType) -> np.ndarray:
        """A path, or an (H, W, 3) uint8 BGR array as mmcv/cv2 load it -> BGR array.

        Raises:
            ValueError: The file is unreadable or the array has the wrong shape/dtype.
        """
        if isinstance(image, str):
            if not osp.isfile(image):
                raise FileNotFoundError(f'image not found: {image}')
            array = mmcv.imread(image)
            if array is None:
                raise ValueError(f'{image}: not a readable image')
            return array
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ValueError(f'image arrays must be (H, W, 3) uint8 BGR, got {array.shape} '
                             f'{array.dtype}')
        return array

    def _prepare(self, img: np.ndarray, packed: dict):
        """Preprocessed sample and the image's encodings, computed once per distinct image."""
        data = self.model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        key = hashlib.sha1(img.tobytes()).hexdigest() + str(img.shape)
        if key != self._cache_key:
            with torch.no_grad():
                self._features_cache = self.model.extract_feat(data['inputs'])
            self._cache_key = key
        return data['data_samples'][0], self._features_cache

    def __call__(self, image: ImageType, queries: Union[str, Sequence[str]],
                 anchors: Optional[Sequence[Optional[np.ndarray]]] = None,
                 draw: bool = True) -> dict:
        """Segment ``image`` for each query.

        Args:
            image: Path or (H, W, 3) uint8 BGR array.
            queries: One instruction or a list; conditional ones contain ``<anchor>``.
            anchors: Per query, an (H, W) bool anchor mask or None.
            draw: Also return the overlay image.

        Returns:
            ``masks`` (N, H, W) bool, ``texts`` (the model's answers), ``visualization``
            (RGB overlay with the queries) when ``draw``. No queries give N = 0.

        Raises:
            ValueError: A query names ``<anchor>`` but has no anchor mask, or has an anchor
                mask but no ``<anchor>`` (the query is named); an anchor of another size.
        """
        texts: List[str] = [queries] if isinstance(queries, str) else list(queries)
        anchors = list(anchors) if anchors is not None else [None] * len(texts)
        if len(anchors) != len(texts):
            raise ValueError(f'{len(texts)} queries but {len(anchors)} anchors')
        img = self.load_image(image)
        name = image if isinstance(image, str) else '<array>'
        for i, (text, anchor) in enumerate(zip(texts, anchors)):
            if (ANCHOR_PLACEHOLDER in text) != (anchor is not None):
                raise ValueError(
                    f'query {i} ({text[:60]!r}) ' +
                    (f'names {ANCHOR_PLACEHOLDER} but no anchor mask was given: pass '
                     f'anchors=[...] with an (H, W) bool mask at position {i}'
                     if anchor is None else
                     f'has an anchor mask but no {ANCHOR_PLACEHOLDER} to put it in'))
            if anchor is not None and anchor.shape != img.shape[:2]:
                raise ValueError(f'anchor {i} is {anchor.shape}, the image is {img.shape[:2]}')
        if not texts:
            result = dict(masks=np.zeros((0, *img.shape[:2]), bool), texts=[])
            if draw:
                result['visualization'] = np.ascontiguousarray(img[..., ::-1])
            return result
        packed = self.pipeline(dict(img=img, img_path=name, ori_shape=img.shape[:2],
                                    img_shape=img.shape[:2], queries=queries_of(texts),
                                    anchor_masks=anchors))
        sample, (sam_embeddings, image_features) = self._prepare(img, packed)
        with torch.no_grad():
            sample = self.model.predict_with_features(sam_embeddings, image_features,
                                                      [sample], mode=self.mode)[0]
        result = dict(masks=sample.pred_masks.cpu().numpy(), texts=sample.pred_texts)
        if draw:
            result['visualization'] = draw_reasoning_masks(img[..., ::-1], result['masks'],
                                                           texts, replies=sample.pred_texts)
        return result
