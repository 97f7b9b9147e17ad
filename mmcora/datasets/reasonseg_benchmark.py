"""``ReasonSegDataset``: LISA's ReasonSeg benchmark (LabelMe-style JSON beside each image).

Every ``<name>.json`` of a split directory annotates ``<name>.jpg`` (or ``.png``)::

    {"text": ["instruction", ...], "is_sentence": true,
     "shapes": [{"label": "target", "points": [[x, y], ...], ...}, ...],
     "imageHeight": H, "imageWidth": W, ...}

Masks are built as LISA's ``utils/data_processing.py::get_mask_from_json`` builds them:
shapes labelled ``flag`` are dropped, the others are drawn largest first (``polylines`` +
``fillPoly``), with value 1 for targets and the ignore value for labels containing
``ignore``, so a smaller polygon drawn later wins where two overlap. Every text of a file
refers to the same target mask.
"""
import glob
import json
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from ..instructions.objects import encode_rle, mask_bbox
from ..utils.special_tokens import DEFAULT_ANSWER

IMAGE_SUFFIXES: Tuple[str, ...] = ('.jpg', '.png')
# LISA's fixed validation prompts (train_ds.py / ValDataset), without the <image> token that
# the model's conversation template adds.
PHRASE_TEMPLATE = 'What is {text} in this image? Please output segmentation mask.'
SENTENCE_TEMPLATE = '{text} Please output segmentation mask.'
ANSWER = DEFAULT_ANSWER
TARGET_VALUE = 1

Polygon = Tuple[str, np.ndarray]  # (label, (K, 2) int32 points)


def read_annotation(path: str) -> Dict[str, Any]:
    """Read one ReasonSeg JSON file.

    A few ReasonSeg files are not valid UTF-8; LISA reads those as cp1252, and so do we.

    Raises:
        ValueError: The file is not JSON or not a JSON object, naming the file.
    """
    try:
        try:
            with open(path, encoding='utf-8') as f:
                anno = json.load(f)
        except UnicodeDecodeError:
            with open(path, encoding='cp1252') as f:
                anno = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f'{path}: unreadable ReasonSeg JSON ({error})') from error
    if not isinstance(anno, dict):
        raise ValueError(f'{path}: expected a JSON object, got {type(anno).__name__}')
    return anno


def _need(anno: Dict[str, Any], key: str, kind: type, path: str) -> Any:
    """``anno[key]`` checked to be a ``kind``; errors name the file and the key."""
    if key not in anno:
        raise ValueError(f'{path}: missing key {key!r}')
    if not isinstance(anno[key], kind):
        raise ValueError(f'{path}: {key!r} must be {kind.__name__}, '
                         f'got {type(anno[key]).__name__}')
    return anno[key]


def parse_polygons(anno: Dict[str, Any], path: str) -> List[Polygon]:
    """The drawable shapes of a file: ``(label, points)`` with ``flag`` shapes dropped.

    Points are truncated to int32 like LISA's ``np.array(points, dtype=np.int32)``, so the
    masks match LISA's pixel for pixel.

    Raises:
        ValueError: A shape without a label, or whose points are not a list of at least 3
            finite (x, y) pairs, naming the file and the shape.
    """
    polygons = []
    for index, shape in enumerate(_need(anno, 'shapes', list, path)):
        where = f'{path}: shape {index}'
        label = shape.get('label') if isinstance(shape, dict) else None
        if not isinstance(label, str):
            raise ValueError(f'{where} has no string label')
        if label.lower() == 'flag':  # LISA: "meaningless deprecated annotations"
            continue
        try:
            points = np.asarray(shape.get('points'), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f'{where} ({label!r}): points are not numbers') from error
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise ValueError(f'{where} ({label!r}): a polygon needs at least 3 (x, y) points, '
                             f'got array of shape {points.shape}')
        if not np.isfinite(points).all():
            raise ValueError(f'{where} ({label!r}): points are not finite')
        polygons.append((label, points.astype(np.int32)))
    return polygons


def is_ignore(label: str) -> bool:
    """LISA's rule: any label containing ``ignore`` marks a region left out of evaluation."""
    return 'ignore' in label.lower()


def polygon_area(points: np.ndarray, size: Tuple[int, int]) -> int:
    """Pixels covered by a drawn polygon (outline + fill, clipped to the image), LISA's area."""
    canvas = np.zeros(size, dtype=np.uint8)
    _draw(canvas, points, 1)
    return int(canvas.sum())


def _draw(canvas: np.ndarray, points: np.ndarray, value: int) -> None:
    """Draw one polygon as LISA does: 1-pixel closed outline, then the filled interior."""
    cv2.polylines(canvas, [points], True, value, 1)
    cv2.fillPoly(canvas, [points], value)


def draw_label_map(polygons: Sequence[Polygon],
                   size: Tuple[int, int],
                   ignore_index: int = 255) -> np.ndarray:
    """One (H, W) uint8 map: 0 background, 1 target, ``ignore_index`` ignore.

    Polygons are drawn largest first so smaller ones stay visible on top. The order of
    equal areas follows LISA too: ``np.argsort(areas)[::-1]`` (numpy sorts short arrays
    stably), i.e. the later of two equal polygons is drawn first.
    """
    areas = [polygon_area(points, size) for _, points in polygons]
    order = np.argsort(np.asarray(areas, dtype=np.int64), kind='stable')[::-1]
    label_map = np.zeros(size, dtype=np.uint8)
    for index in order:
        label, points = polygons[index]
        _draw(label_map, points, ignore_index if is_ignore(label) else TARGET_VALUE)
    return label_map


def instruction_texts(anno: Dict[str, Any], path: str) -> Tuple[List[str], bool]:
    """The file's instructions and whether they are sentences (else short phrases).

    Raises:
        ValueError: No ``text``, an empty or non-string one, or no boolean ``is_sentence``,
            naming the file.
    """
    texts = anno.get('text')
    if isinstance(texts, str):  # tolerate a bare string for a single instruction
        texts = [texts]
    if (not isinstance(texts, list) or not texts
            or not all(isinstance(t, str) and t.strip() for t in texts)):
        raise ValueError(f'{path}: "text" must be a non-empty list of non-empty strings')
    is_sentence = _need(anno, 'is_sentence', bool, path)
    return [t.strip() for t in texts], is_sentence


def query_text(text: str, is_sentence: bool) -> str:
    """LISA's validation prompt for one instruction."""
    return (SENTENCE_TEMPLATE if is_sentence else PHRASE_TEMPLATE).format(text=text)


def find_image(json_path: str) -> str:
    """The image beside a JSON file: same stem, ``.jpg`` or else ``.png``.

    Raises:
        FileNotFoundError: Neither exists, naming the JSON file.
    """
    stem = osp.splitext(json_path)[0]
    for suffix in IMAGE_SUFFIXES:
        if osp.isfile(stem + suffix):
            return stem + suffix
    raise FileNotFoundError(f'{json_path}: no image {osp.basename(stem)}'
                            f'{{{",".join(IMAGE_SUFFIXES)}}} beside it')


def image_size(anno: Dict[str, Any], img_path: str, json_path: str) -> Tuple[int, int]:
    """(H, W) from the JSON's ``imageHeight``/``imageWidth``, else by reading the image.

    Raises:
        ValueError: A non-positive or non-integer size in the JSON, naming the file.
        FileNotFoundError: The image must be read and cannot be, naming it.
    """
    height, width = anno.get('imageHeight'), anno.get('imageWidth')
    if height is None or width is None:
        img = cv2.imread(img_path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FileNotFoundError(f'{img_path}: unreadable image (needed for the size of '
                                    f'{osp.basename(json_path)}, which has no imageHeight)')
        return int(img.shape[0]), int(img.shape[1])
    if (not all(isinstance(v, int) and not isinstance(v, bool) for v in (height, width))
            or height <= 0 or width <= 0):
        raise ValueError(f'{json_path}: imageHeight/imageWidth must be positive integers, '
                         f'got {height!r}/{width!r}')
    return height, width


@DATASETS.register_module()
class ReasonSegDataset(BaseDataset):
    """LISA's ReasonSeg: one item per image, its instruction(s) as queries on one target.

    Items carry ``img_path``, ``seg_map_path=None``, ``queries`` (dicts like the instruction
    engine's; ``target`` holds the run-length target mask and its box), ``ignore_rle`` (the
    image's ignore region, read by ``LoadReasoningAnnotations``), ``height`` and ``width``.
    Files without any target polygon (two in the test split) are skipped with a warning.

    Args:
        data_root (str): Directory holding the split directories (``train``, ``val``, ``test``).
        split (str): Sub-directory of ``data_root`` to read.
        all_texts (bool): Make every ``text`` entry a query of the image (the image is still
            encoded once per item). False keeps only ``text[0]``, as LISA's validation does.
        ignore_index (int): Value of ignore pixels in the drawn label map; must not be 0 or 1.
        **kwargs (dict): ``BaseDataset`` arguments (``pipeline``, ``test_mode``, ...).

    Raises:
        ValueError: On an invalid ``ignore_index``, and at load time on an unreadable JSON
            file or a bad polygon, naming the file.
        FileNotFoundError: At load time, on a JSON file without its image, naming it.
    """

    METAINFO = dict(classes=('target', ))

    def __init__(self,
                 data_root: str,
                 split: str = 'val',
                 all_texts: bool = False,
                 ignore_index: int = 255,
                 **kwargs) -> None:
        if not 1 < ignore_index < 256:
            raise ValueError(f'ignore_index must be in 2..255 (0 and 1 are background and '
                             f'target), got {ignore_index}')
        self.split, self.all_texts, self.ignore_index = split, all_texts, ignore_index
        super().__init__(data_root=data_root, data_prefix=dict(img_path=split), **kwargs)

    def load_data_list(self) -> List[dict]:
        """Parse every JSON file of the split, in file-name order.

        Raises:
            FileNotFoundError: The split directory holds no JSON file.
        """
        directory = self.data_prefix['img_path']
        json_paths = sorted(glob.glob(osp.join(directory, '*.json')))
        if not json_paths:
            raise FileNotFoundError(f'no ReasonSeg JSON files in {directory}')
        data_list = [item for item in map(self.parse_file, json_paths) if item is not None]
        print_log(
            f'ReasonSeg {self.split}: {len(data_list)} images, '
            f'{sum(len(d["queries"]) for d in data_list)} queries '
            f'({len(json_paths) - len(data_list)} files skipped)',
            logger='current')
        return data_list

    def parse_file(self, json_path: str) -> Optional[dict]:
        """One data item from one JSON file; None (with a warning) if it has no target."""
        anno = read_annotation(json_path)
        img_path = find_image(json_path)
        polygons = parse_polygons(anno, json_path)
        texts, is_sentence = instruction_texts(anno, json_path)
        if not any(not is_ignore(label) for label, _ in polygons):
            print_log(
                f'{json_path}: no target polygon, skipped', logger='current', level=logging.WARNING)
            return None
        size = image_size(anno, img_path, json_path)
        label_map = draw_label_map(polygons, size, self.ignore_index)
        target = label_map == TARGET_VALUE
        if not target.any():
            # LISA still evaluates such a file, with an empty ground truth.
            print_log(
                f'{json_path}: the target polygons cover no pixel of the '
                f'{size[0]}x{size[1]} image',
                logger='current',
                level=logging.WARNING)
        target_ref = dict(rle=encode_rle(target), bbox=mask_bbox(target))
        kind = 'reasonseg_sentence' if is_sentence else 'reasonseg_phrase'
        queries = [
            dict(
                text=query_text(text, is_sentence),
                answer=ANSWER,
                type=kind,
                class_id=-1,
                class_name='target',
                relation=None,
                source='reasonseg',
                target=target_ref,
                anchor=None) for text in (texts if self.all_texts else texts[:1])
        ]
        return dict(
            img_path=img_path,
            seg_map_path=None,
            queries=queries,
            ignore_rle=encode_rle(label_map == self.ignore_index),
            height=size[0],
            width=size[1])
