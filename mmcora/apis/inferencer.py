"""``ReasoningSegInferencer``: image + one or many instructions -> masks and an overlay.

The inference API is kept apart from the model (as segment-anything's ``SamPredictor`` is). Its
preprocessing is the config's test pipeline without the loading steps (as
``MMSegInferencer._init_pipeline`` makes it), so inference cannot drift from evaluation. The
image's encodings are held explicitly: :meth:`set_image` computes SAM's embedding and CLIP's
tokens once, :meth:`predict` answers any number of queries on them, :meth:`reset_image`
drops them; ``__call__`` does the first two and skips the encoding when the image is the one
already set.
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
from mmseg.registry import MODELS, TRANSFORMS

from ..datasets.transforms import PackReasoningInputs, queries_of
from ..engine import load_model_checkpoint
from ..instructions.vocabulary import ANCHOR_PLACEHOLDER
from ..visualization import draw_reasoning_masks
from .export_dir import load_config

ImageType = Union[str, np.ndarray]
# Steps of a test pipeline that read files: the inferencer is given the image (and no labels).
LOADING_STEPS = ('LoadImageFromFile', 'LoadReasoningAnnotations', 'LoadAnnotations')
# A Seg-Zero prediction's metainfo -> the result's keys.
POSITIONAL_FIELDS = dict(pred_reasoning='reasoning', pred_boxes='boxes', pred_points='points')


def inference_pipeline(cfg: Config, model: torch.nn.Module) -> List[dict]:
    """The config's test pipeline without its loading steps, checked against the model.

    Args:
        cfg (Config): A CORA or Seg-Zero config with ``test_dataloader.dataset.pipeline``.
        model (torch.nn.Module): The built segmentor (CORA's ``sam.img_size`` and
            ``mllm.image_size`` are checked against the pipeline's resizes).

    Returns:
        list[dict]: The transforms' configs, from the first after loading to the packer.

    Raises:
        KeyError: The config has no test pipeline.
        ValueError: The pipeline resizes to other sizes than the model's encoders take, or
            does not end with ``PackReasoningInputs`` or a subclass (``PackSegZeroInputs``).
    """
    try:
        steps = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        raise KeyError('the config has no test_dataloader.dataset.pipeline: the inferencer '
                       'takes its preprocessing from it') from None
    steps = [dict(step) for step in steps if step['type'] not in LOADING_STEPS]
    expected = dict(SAMResize=('sam', 'img_size'), CLIPInputs=('mllm', 'image_size'))
    for step in steps:
        if step['type'] not in expected:
            continue
        part, attr = expected[step['type']]
        size = getattr(getattr(model, part, None), attr, None)
        if step.get('size') != size:
            raise ValueError(f'test_dataloader.dataset.pipeline: {step["type"]} resizes to '
                             f'{step.get("size")} px but the model\'s {part}.{attr} is {size}')
    packer = TRANSFORMS.get(steps[-1]['type']) if steps else None
    if not (isinstance(packer, type) and issubclass(packer, PackReasoningInputs)):
        raise ValueError('test_dataloader.dataset.pipeline must end with PackReasoningInputs '
                         f'(or a subclass), got {[step["type"] for step in steps]}')
    return steps


def _anchor_mask(index: int, anchor: Union[np.ndarray, list], shape: tuple) -> np.ndarray:
    """An anchor mask as (H, W) bool, or a ValueError naming the anchor and what is wrong.

    Args:
        index (int): Position of the anchor (and its query) in the call.
        anchor (array-like): (H, W) bool mask, or numbers that are all 0 or 1.
        shape (tuple[int, int]): The image's (H, W).
    """
    mask = np.asarray(anchor)
    if mask.shape != tuple(shape):
        raise ValueError(f'anchor {index} is {mask.shape}, the image is {tuple(shape)}')
    if mask.dtype != bool:
        values = np.unique(mask)
        if values.dtype.kind not in 'biuf' or not np.isin(values, (0, 1)).all():
            raise ValueError(f'anchor {index} must be a bool (or 0/1) mask, got {mask.dtype} '
                             f'values {values[:5].tolist()}{" ..." if len(values) > 5 else ""}')
        mask = mask.astype(bool)
    if not mask.any():
        raise ValueError(f'anchor {index} is empty (no pixel set): an anchor mask marks the '
                         f'object the query relates to')
    return mask


class ReasoningSegInferencer:
    """Reasoning segmentation of images with free-form instructions.

    Args:
        model (str | Config | torch.nn.Module): Config file, ``Config``, an export directory
            of ``tools/export_hf.py`` (or its ``config.py``), or a built ``CORASegmentor`` or
            ``SegZeroSegmentor`` (then ``cfg`` gives its test pipeline).
        checkpoint (str, optional): Checkpoint to load into the model (built or given); a
            checkpoint of another config is refused (:class:`CheckpointMismatchError`).
            None with an exported config loads the export's heads (its ``load_from``).
        device (str, optional): Torch device; None keeps a given model where it is and puts
            one built from a config on the GPU when there is one (else the CPU).
        mode (str, optional): ``'teacher_forcing'`` or ``'generate'``; None uses the
            model's ``test_cfg`` (Seg-Zero always generates).
        cfg (str | Config, optional): The config of a built ``model``, for its test pipeline.

    Example:
        >>> inferencer = ReasoningSegInferencer('configs/cora/toy-city_1-30_tiny.py',
        ...                                     'work_dirs/.../iter_1200.pth')
        >>> result = inferencer('street.png', ['Segment the car.', 'Segment the sky.'])
        >>> result['masks'].shape, result['visualization'].shape
        >>> inferencer.set_image('street.png')  # or explicitly: encode once ...
        >>> inferencer.predict(['Segment the bus.'])  # ... and ask many times
        >>> exported = ReasoningSegInferencer('work_dirs/export')  # tools/export_hf.py OUT
    """

    def __init__(self,
                 model: Union[str, Config, torch.nn.Module],
                 checkpoint: Optional[str] = None,
                 device: Optional[str] = None,
                 mode: Optional[str] = None,
                 cfg: Union[str, Config, None] = None) -> None:
        init_default_scope('mmseg')
        if isinstance(model, torch.nn.Module):
            if cfg is None:
                raise TypeError('a built model needs cfg= (its config): the inferencer takes '
                                'its preprocessing from the test pipeline')
        else:
            cfg = model
        # an export directory or config is checked (every file there, whole) before the build
        cfg, exported = load_config(cfg)
        if not isinstance(model, torch.nn.Module):
            model = MODELS.build(cfg.model)
            if checkpoint is None and exported is not None:  # the export's heads
                checkpoint = cfg.load_from
            if device is None:  # built here: the GPU when there is one
                device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if checkpoint is not None:  # every key and shape must match (names the file if not)
            load_model_checkpoint(model, checkpoint)
        self.model = (model if device is None else model.to(device)).eval()
        self.mode = mode
        self.pipeline = Compose(inference_pipeline(cfg, self.model))
        self.reset_image()

    @staticmethod
    def load_image(image: ImageType) -> np.ndarray:
        """A path, or an (H, W, 3) uint8 BGR array as mmcv/cv2 load it -> BGR array.

        Raises:
            FileNotFoundError: No file at the path.
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

    @property
    def is_image_set(self) -> bool:
        """Whether an image is encoded and :meth:`predict` can run."""
        return self._image is not None

    def reset_image(self) -> None:
        """Drop the set image and its encodings."""
        self._image: Optional[np.ndarray] = None
        self._name = ''
        self._key: Optional[str] = None
        self._features = None

    def _run_pipeline(self, texts: List[str], anchors: List[Optional[np.ndarray]]) -> dict:
        img = self._image
        packed = self.pipeline(
            dict(
                img=img,
                img_path=self._name,
                ori_shape=img.shape[:2],
                img_shape=img.shape[:2],
                queries=queries_of(texts),
                anchor_masks=anchors))
        return self.model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)

    def set_image(self, image: ImageType) -> None:
        """Encode ``image`` once (SAM embedding, CLIP tokens) for the next :meth:`predict` calls.

        Setting the image that is already set (same pixels) keeps its encodings.

        Args:
            image (str | np.ndarray): Path or (H, W, 3) uint8 BGR array.
        """
        img = self.load_image(image)
        key = hashlib.sha1(img.tobytes()).hexdigest() + str(img.shape)
        if key == self._key:
            return
        self.reset_image()
        self._image, self._name = img, image if isinstance(image, str) else '<array>'
        inputs = self._run_pipeline([], [])['inputs']
        with torch.no_grad():
            self._features = self.model.extract_feat(inputs)
        self._key = key

    def predict(self,
                queries: Union[str, Sequence[str]],
                anchors: Optional[Sequence[Optional[np.ndarray]]] = None,
                draw: bool = True) -> dict:
        """Segment the set image (:meth:`set_image`) for each query.

        Args:
            queries (str | Sequence[str]): One instruction or a list; conditional ones
                contain ``<anchor>``.
            anchors (Sequence[np.ndarray | None], optional): Per query, an (H, W) bool anchor
                mask or None.
            draw (bool): Also return the overlay image.

        Returns:
            dict: ``masks`` (N, H, W) bool, ``texts`` (the model's answers), ``visualization``
            (RGB overlay with the queries) when ``draw``. No queries give N = 0. A Seg-Zero
            model adds ``reasoning`` (the ``<think>`` texts), ``boxes`` (x1, y1, x2, y2) and
            ``points`` (two (x, y)), in image pixels, None where the reply was unreadable;
            its overlay draws them.

        Raises:
            RuntimeError: No image is set.
            ValueError: A query names ``<anchor>`` but has no anchor mask, or has an anchor
                mask but no ``<anchor>`` (the query is named); an anchor of another size, with
                values other than 0/1 or without any pixel set;
                any anchor for a model without anchor input (Seg-Zero: name it in words).
        """
        if not self.is_image_set:
            raise RuntimeError('no image is set: call set_image(image) before predict(...)')
        img = self._image
        texts: List[str] = [queries] if isinstance(queries, str) else list(queries)
        anchors = list(anchors) if anchors is not None else [None] * len(texts)
        if len(anchors) != len(texts):
            raise ValueError(f'{len(texts)} queries but {len(anchors)} anchors')
        for i, (text, anchor) in enumerate(zip(texts, anchors)):
            if not getattr(self.model, 'takes_anchor_masks', True) and (anchor is not None or
                                                                        ANCHOR_PLACEHOLDER in text):
                raise ValueError(
                    f'query {i} ({text[:60]!r}): {type(self.model).__name__} takes no anchor '
                    f'masks; name the anchor in words ("the car left of the bus") without '
                    f'{ANCHOR_PLACEHOLDER} or anchors=')
            if (ANCHOR_PLACEHOLDER in text) != (anchor is not None):
                raise ValueError(f'query {i} ({text[:60]!r}) ' + (
                    f'names {ANCHOR_PLACEHOLDER} but no anchor mask was given: pass '
                    f'anchors=[...] with an (H, W) bool mask at position {i}' if anchor is
                    None else f'has an anchor mask but no {ANCHOR_PLACEHOLDER} to put it in'))
            if anchor is not None:
                anchors[i] = _anchor_mask(i, anchor, img.shape[:2])
        if not texts:
            result = dict(masks=np.zeros((0, *img.shape[:2]), bool), texts=[])
        else:
            sample = self._run_pipeline(texts, anchors)['data_samples'][0]
            with torch.no_grad():
                sample = self.model.predict_with_features(
                    *self._features, [sample], mode=self.mode)[0]
            result = dict(masks=sample.pred_masks.cpu().numpy(), texts=sample.pred_texts)
            for key, name in POSITIONAL_FIELDS.items():
                if key in sample.metainfo:
                    result[name] = sample.metainfo[key]
        if draw:
            positional = 'boxes' in result
            result['visualization'] = (
                draw_reasoning_masks(
                    img[..., ::-1],
                    result['masks'],
                    texts,
                    # Seg-Zero's replies are whole reasoning chains: the overlay shows the
                    # box and points instead.
                    replies=None if positional else result['texts'],
                    boxes=result.get('boxes'),
                    points=result.get('points')) if texts else np.ascontiguousarray(img[..., ::-1]))
        return result

    def __call__(self,
                 image: ImageType,
                 queries: Union[str, Sequence[str]],
                 anchors: Optional[Sequence[Optional[np.ndarray]]] = None,
                 draw: bool = True) -> dict:
        """:meth:`set_image` then :meth:`predict` (the same image is encoded only once).

        Args:
            image (str | np.ndarray): Path or (H, W, 3) uint8 BGR array.
            queries (str | Sequence[str]): As for :meth:`predict`.
            anchors (Sequence[np.ndarray | None], optional): As for :meth:`predict`.
            draw (bool): Also return the overlay image.

        Returns:
            dict: As :meth:`predict`.
        """
        self.set_image(image)
        return self.predict(queries, anchors, draw)
