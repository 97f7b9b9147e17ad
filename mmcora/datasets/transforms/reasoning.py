"""Pipeline transforms for reasoning segmentation (N queries per image).

A typical pipeline::

    LoadImageFromFile -> SampleQueries -> LoadReasoningAnnotations -> SAMResize
    -> CLIPInputs -> PackReasoningInputs

Images stay uint8 here; normalisation and padding happen on the device in
``ReasoningDataPreProcessor``.
"""
from typing import List, Optional, Sequence

import cv2
import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from segment_anything.utils.transforms import ResizeLongestSide

from ...instructions.objects import decode_rle
from ...instructions.vocabulary import ANSWERS, DISPLAY_NAMES, VOCABULARIES, render_text
from ...structures import ReasoningDataSample
from ...utils.special_tokens import DEFAULT_ANSWER

OPENAI_CLIP_MEAN_255 = (122.77, 116.75, 104.09)  # pad colour of square CLIP inputs (RGB)
# How SAM and CLIP inputs are resized: 'library' as the pretrained encoders were fed
# (segment-anything's ResizeLongestSide, CLIPImageProcessor's PIL bicubic, both antialiased),
# 'cv2' without antialiasing (the toy foundation models' pretraining format).
RESIZE_BACKENDS = ('library', 'cv2')


def check_backend(backend: str, where: str) -> str:
    """``backend`` if it is one of :data:`RESIZE_BACKENDS`, else a ValueError naming ``where``."""
    if backend not in RESIZE_BACKENDS:
        raise ValueError(f'{where}: backend must be one of {RESIZE_BACKENDS}, got {backend!r}')
    return backend


@TRANSFORMS.register_module()
class SampleQueries(BaseTransform):
    """Keep ``num_queries`` random queries of the image (all of them if it has fewer).

    Which instruction types exist is the dataset's ``query_types``. With ``reword``, the
    wording is drawn afresh each time the image is drawn, as LISA draws its templates: every
    kept query gets a new answer template, and queries written by the built-in engine
    (``source == 'builtin'``) a new instruction template around the same class, relation and
    anchor. Queries written by an LLM keep their text.

    Args:
        num_queries (int): Queries per image and step (LISA uses 3 per image).
        reword (bool): Draw templates and answers per draw (training); False keeps the file's.
        vocabulary (str): Built-in vocabulary of the class descriptions and display names
            (``'cityscapes'``, ``'pannuke'``), needed by ``reword``.
    """

    def __init__(self,
                 num_queries: int = 3,
                 reword: bool = False,
                 vocabulary: str = 'cityscapes') -> None:
        if vocabulary not in VOCABULARIES:
            raise ValueError(f'vocabulary must be one of {sorted(VOCABULARIES)}, '
                             f'got {vocabulary!r}')
        self.num_queries, self.reword = num_queries, reword
        self.vocabulary = VOCABULARIES[vocabulary]
        self.display = DISPLAY_NAMES[vocabulary]

    def transform(self, results: dict) -> dict:
        queries = results['queries']
        if len(queries) > self.num_queries:
            keep = np.random.choice(len(queries), self.num_queries, replace=False)
            queries = [queries[i] for i in sorted(keep)]
        if self.reword:
            queries = [self._reword(q) for q in queries]
        results['queries'] = queries
        return results

    def _reword(self, query: dict) -> dict:
        query = dict(query, answer=ANSWERS[np.random.randint(len(ANSWERS))])
        if query.get('source') == 'builtin':
            anchor = query.get('anchor')
            query['text'] = render_text(query['type'], query['class_name'], self.vocabulary,
                                        np.random.randint, query.get('relation'),
                                        anchor['class_name'] if anchor else None, self.display)
        return query


@TRANSFORMS.register_module()
class LoadReasoningAnnotations(BaseTransform):
    """Per-query target masks from the label map, plus anchor masks and boxes.

    Semantic and attribute queries target every pixel of their class; conditional queries
    target their object's run-length mask. Void pixels (``ignore_index`` in the label map)
    are ignore in every target. Data without a label map (``seg_map_path`` None, e.g.
    ReasonSeg) takes its void pixels from the item's run-length ``ignore_rle`` (none if
    absent), and every query must then carry its own ``target`` mask.

    Adds ``gt_masks`` (N, H, W) uint8 in {0, 1, ignore} and ``anchor_masks`` (list of N
    bool masks or None).

    A label map must have one channel, and, where the item carries the dataset's
    ``num_classes`` (``ReasoningSegDataset`` adds it), hold only ids ``0 .. num_classes - 1``
    and ``ignore_index``: a colour map or one of other ids (Cityscapes' ``labelIds`` for
    ``labelTrainIds``) would otherwise give silently wrong targets.

    Args:
        ignore_index (int): Value of void pixels in the label map and in the targets.

    Raises:
        FileNotFoundError: A label map that is missing or unreadable, naming it.
        ValueError: A label map with more than one channel or ids outside the classes, naming
            the label map; a label map or a query mask whose size differs from the image,
            naming the image (and the query).
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        img_path = results['img_path']
        shape = results['img'].shape[:2]
        if results.get('seg_map_path') is None:
            label = None
            ignore = results.get('ignore_rle')
            void = (
                np.zeros(shape, bool) if ignore is None else self._decode(
                    ignore, shape, f'{img_path} ignore_rle'))
        else:
            label = self._label_map(results['seg_map_path'], img_path, shape)
            self._check_ids(label, results['seg_map_path'], results.get('num_classes'))
            void = label == self.ignore_index
        masks, anchors = [], []
        for i, query in enumerate(results['queries']):
            where = f'{img_path} query {i} ({query["text"][:40]!r})'
            if query.get('target') is None:
                if label is None:
                    raise ValueError(f'{where}: no target mask and no label map to take '
                                     f'class {query["class_id"]} from')
                target = label == query['class_id']
            else:
                target = self._decode(query['target']['rle'], shape, where)
            mask = target.astype(np.uint8)
            mask[void & ~target] = self.ignore_index
            masks.append(mask)
            anchor = query.get('anchor')
            anchors.append(None if anchor is None else self._decode(anchor['rle'], shape, where))
        results['gt_masks'] = (np.stack(masks) if masks else np.zeros((0, *shape), np.uint8))
        results['anchor_masks'] = anchors
        return results

    @staticmethod
    def _label_map(seg_map_path: str, img_path: str, shape) -> np.ndarray:
        label = mmcv.imread(seg_map_path, flag='unchanged', backend='cv2')
        if label is None:
            raise FileNotFoundError(f'label map missing or unreadable: {seg_map_path}')
        if label.ndim != 2:
            raise ValueError(f'{seg_map_path}: a label map must have one channel, got shape '
                             f'{label.shape} (write the class ids as a one-channel image)')
        if label.shape[:2] != shape:
            raise ValueError(f'{img_path}: label map {seg_map_path} is '
                             f'{label.shape[:2]}, the image is {shape}')
        return label

    def _check_ids(self, label: np.ndarray, seg_map_path: str, num_classes: Optional[int]) -> None:
        """Refuse ids that are neither classes nor the ignore index (unknown classes: no check).

        Two comparisons over the map, and a sort of only the offending pixels.
        """
        if num_classes is None:
            return
        bad = (label >= num_classes) & (label != self.ignore_index)
        if not bad.any():
            return
        ids = np.unique(label[bad]).tolist()
        shown = ', '.join(map(str, ids[:10])) + (f', ... ({len(ids)} ids)' if len(ids) > 10 else '')
        raise ValueError(f'{seg_map_path}: ids [{shown}] are not classes of this dataset '
                         f'(0..{num_classes - 1}) nor the ignore index {self.ignore_index}')

    @staticmethod
    def _decode(rle: dict, shape, where: str) -> np.ndarray:
        if tuple(rle['size']) != tuple(shape):
            raise ValueError(f'{where}: mask size {tuple(rle["size"])} differs from the image '
                             f'{tuple(shape)}')
        return decode_rle(rle, where)


@TRANSFORMS.register_module()
class SAMResize(BaseTransform):
    """Resize so the longest side is ``size`` (SAM's input; padding comes later).

    Adds ``sam_img`` (h', w', 3) uint8 and ``sam_shape`` (h', w').

    Args:
        size (int): The longest side (SAM: 1024).
        backend (str): ``'library'``: segment-anything's ``ResizeLongestSide.apply_image``
            (PIL bilinear, antialiased), as SAM's own predictor feeds its encoder; ``'cv2'``:
            ``cv2.INTER_LINEAR`` without antialiasing (the toy foundation SAM's format).
            Defaults to ``'library'``.
    """

    def __init__(self, size: int = 1024, backend: str = 'library') -> None:
        self.size = size
        self.backend = check_backend(backend, 'SAMResize')

    def transform(self, results: dict) -> dict:
        img = results['img']
        new_h, new_w = ResizeLongestSide.get_preprocess_shape(*img.shape[:2], self.size)
        if self.backend == 'library':  # per channel: BGR resizes as RGB does
            results['sam_img'] = ResizeLongestSide(self.size).apply_image(img)
        else:
            results['sam_img'] = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        results['sam_shape'] = (new_h, new_w)
        return results


def square_resize(img: np.ndarray,
                  size: int,
                  pad: Sequence[float],
                  backend: str = 'library') -> np.ndarray:
    """Pad to a centred square with ``pad`` colour (LLaVA-1.5's ``expand2square``), then resize
    to ``size``: with ``backend='library'`` by transformers' ``image_transforms.resize`` with
    PIL bicubic, what ``CLIPImageProcessor`` does to a square image; with ``'cv2'`` by
    ``cv2.INTER_CUBIC`` without antialiasing."""
    h, w = img.shape[:2]
    side = max(h, w)
    canvas = np.empty((side, side, img.shape[2]), img.dtype)
    canvas[...] = np.asarray(pad, dtype=img.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = img
    if check_backend(backend, 'square_resize') == 'cv2':
        return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_CUBIC)
    from transformers.image_transforms import resize
    from transformers.image_utils import ChannelDimension, PILImageResampling
    return resize(
        canvas, (size, size),
        resample=PILImageResampling.BICUBIC,
        data_format=ChannelDimension.LAST,
        input_data_format=ChannelDimension.LAST)


def masked_crop(img: np.ndarray, mask: np.ndarray, size: int, backend: str = 'library'):
    """SegLLM's object crop: ``img`` masked by ``mask`` (black elsewhere), cut to the mask's
    box, padded square and resized (:func:`square_resize` with ``backend``) -> ((size, size, 3)
    crop, box ``(x0, y0, x1, y1)``)."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    crop = np.where(mask[y0:y1, x0:x1, None], img[y0:y1, x0:x1], 0).astype(img.dtype)
    return square_resize(crop, size, (0, 0, 0), backend), (x0, y0, x1, y1)


@TRANSFORMS.register_module()
class CLIPInputs(BaseTransform):
    """CLIP inputs: the whole image and each anchor's masked crop, squared and resized.

    The image is padded to a square (LLaVA-1.5's ``pad`` aspect mode) rather than centre
    cropped, so objects at the left and right borders stay visible to the language model,
    which must judge left/right relations. Anchor crops follow SegLLM: the image masked by
    the anchor, cropped to the anchor's box, squared and resized.

    Adds ``clip_img`` (S, S, 3), ``anchor_crops`` (A, S, S, 3), ``anchor_index`` (A,) and
    ``anchor_boxes`` (A, 4) normalised to [0, 1].

    Args:
        size (int): CLIP's input size (LLaVA-1.5: 336).
        pad (Sequence[float]): RGB pad colour of the square (the image processor's mean).
        backend (str): ``'library'``: resized as ``CLIPImageProcessor`` resizes (PIL bicubic,
            antialiased), how LLaVA-1.5's vision tower was fed; ``'cv2'``: ``cv2.INTER_CUBIC``
            without antialiasing (the toy foundation LLaVA's format). Defaults to
            ``'library'``.
    """

    def __init__(self,
                 size: int = 336,
                 pad: Sequence[float] = OPENAI_CLIP_MEAN_255,
                 backend: str = 'library') -> None:
        self.size = size
        self.pad_bgr = tuple(pad[::-1])  # images are BGR until the data preprocessor
        self.backend = check_backend(backend, 'CLIPInputs')

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        results['clip_img'] = square_resize(img, self.size, self.pad_bgr, self.backend)
        crops, index, boxes = [], [], []
        for i, mask in enumerate(results.get('anchor_masks') or []):
            if mask is None or not mask.any():
                continue
            crop, (x0, y0, x1, y1) = masked_crop(img, mask, self.size, self.backend)
            crops.append(crop)
            index.append(i)
            boxes.append([x0 / w, y0 / h, x1 / w, y1 / h])
        results['anchor_crops'] = (
            np.stack(crops) if crops else np.zeros((0, self.size, self.size, 3), np.uint8))
        results['anchor_index'] = np.asarray(index, dtype=np.int64)
        results['anchor_boxes'] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return results


@TRANSFORMS.register_module()
class PackReasoningInputs(BaseTransform):
    """Pack into ``inputs`` (dict of uint8 CHW tensors) and a ``ReasoningDataSample``.

    Unlabeled (pseudo-labeled) items also carry ``pseudo_path`` and ``consistency_queries`` in
    the metainfo and ``gt_confidence`` (1, H, W) when a confidence map was read.
    """

    META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'sam_shape', 'pseudo_path')
    QUERY_KEYS = ('text', 'answer', 'type', 'class_id', 'class_name', 'relation', 'source')

    def transform(self, results: dict) -> dict:
        return dict(
            inputs=dict(sam=chw(results['sam_img']), clip=chw(results['clip_img'])),
            data_samples=self.pack_sample(results))

    def pack_sample(self, results: dict) -> ReasoningDataSample:
        """The data sample: metainfo, targets and anchors (everything but the images)."""
        sample = ReasoningDataSample()
        meta = {k: results[k] for k in self.META_KEYS if k in results}
        for key in ('queries', 'consistency_queries'):
            if key in results:
                meta[key] = [{k: q.get(k) for k in self.QUERY_KEYS} for q in results[key]]
        sample.set_metainfo(meta)
        if 'gt_masks' in results:
            sample.gt_masks = torch.from_numpy(results['gt_masks'])
        if results.get('gt_confidence') is not None:
            sample.gt_confidence = torch.from_numpy(results['gt_confidence'])
        crops = results.get('anchor_crops')
        if crops is not None:
            sample.anchor_crops = torch.from_numpy(
                np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
            sample.anchor_index = torch.from_numpy(results['anchor_index'])
            sample.anchor_boxes = torch.from_numpy(results['anchor_boxes'])
        return sample


def chw(array: np.ndarray) -> torch.Tensor:
    """(H, W, C) array -> (C, H, W) contiguous tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def queries_of(texts: List[str], answers: Optional[List[str]] = None) -> List[dict]:
    """Query dicts for an image without an instruction file (inference)."""
    return [
        dict(
            text=t,
            answer=(answers[i] if answers else DEFAULT_ANSWER),
            type='free',
            class_id=-1,
            class_name='',
            relation=None,
            source='user',
            target=None,
            anchor=None) for i, t in enumerate(texts)
    ]
