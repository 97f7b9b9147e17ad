"""PanNuke for mmseg: fold conversion, ``PanNukeDataset`` and tissue-stratified partitions.

PanNuke ships three folds of 256x256 H&E patches as numpy arrays
(``<src>/Fold k/images/foldk/{images,types}.npy``, ``<src>/Fold k/masks/foldk/masks.npy``).
:func:`convert_fold` turns one fold into the layout mmseg reads, relative to ``<dst>``::

    img_dir/fold{k}/fold{k}_{i:04d}.png    RGB patch (PNG as OpenCV/mmcv read it)
    ann_dir/fold{k}/fold{k}_{i:04d}.png    class ids 0 background ... 5 epithelial
    types/fold{k}.txt                      '<name> <tissue>' per image
    splits/fold{k}/all.txt                 every image of the fold
    splits/fold{k}/{1_30,1_16,1_8,1_4}/{labeled,unlabeled}.txt   (training fold only)

Names in the lists are relative to ``data_prefix`` (``fold1/fold1_0000``), mmseg's
``ann_file`` form (see :mod:`mmcora.datasets.partitions`).
"""
import functools
import json
import math
import os
import os.path as osp
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..utils import write_atomic, write_png_atomic
from ..utils.class_names import PANNUKE_CLASSES
from .partitions import PACKAGED_SPLITS, PARTITIONS, read_name_list, write_name_list

PANNUKE_PALETTE: List[List[int]] = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200],
                                    [255, 225, 25], [145, 30, 180]]
PATCH_SIZE = 256
NUCLEUS_CHANNELS = 5
# yapf: disable  (yapf puts the continued string at the keys' column)
_EXPECTED = {
    'images': 'a numeric array N x 256 x 256 x 3 with values 0-255',
    'masks': 'a numeric array N x 256 x 256 x 6 of instance ids (channels 0-4 nuclei, 5 '
             'background)',
    'types': 'a 1-D array of N tissue-type strings',
}
# yapf: enable
_PNG_HEAD = b'\x89PNG\r\n\x1a\n'
_PNG_TAIL = b'IEND\xaeB`\x82'  # the IEND chunk type and CRC close every complete PNG


@DATASETS.register_module()
class PanNukeDataset(BaseSegDataset):
    """PanNuke nuclei semantic segmentation in the layout of :func:`convert_fold`.

    Use ``data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir')`` and an ``ann_file``
    such as ``splits/fold1/1_8/labeled.txt`` or ``splits/fold2/all.txt``.
    """

    METAINFO = dict(classes=PANNUKE_CLASSES, palette=PANNUKE_PALETTE)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)


@dataclass
class FoldArrays:
    """One fold's arrays: images and masks memory-mapped, tissue types in memory."""
    images: np.ndarray
    masks: np.ndarray
    tissues: List[str]
    paths: Dict[str, str]


@dataclass
class FoldSummary:
    """What :func:`convert_fold` did and the fold's content (label counts over all images)."""
    fold: int
    names: List[str]
    tissues: List[str]
    written: int = 0
    skipped: int = 0
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(6, np.int64))
    class_images: np.ndarray = field(default_factory=lambda: np.zeros(6, np.int64))


def sample_name(fold: int, index: int) -> str:
    """``'fold{k}/fold{k}_{i:04d}'``, an image's name relative to ``data_prefix``."""
    return f'fold{fold}/fold{fold}_{index:04d}'


def fold_file_paths(src: str, fold: int) -> Dict[str, str]:
    """Paths of the official ``images``, ``types`` and ``masks`` files of a fold."""
    base = osp.join(src, f'Fold {fold}')
    return {
        'images': osp.join(base, 'images', f'fold{fold}', 'images.npy'),
        'types': osp.join(base, 'images', f'fold{fold}', 'types.npy'),
        'masks': osp.join(base, 'masks', f'fold{fold}', 'masks.npy')
    }


def _load(path: str, what: str, mmap: bool) -> np.ndarray:
    if not osp.isfile(path):
        raise FileNotFoundError(f'PanNuke {what} file not found: {path} (expected '
                                f'{_EXPECTED[what]})')
    try:  # allow_pickle=False: the official files are plain arrays, never pickles
        return np.load(path, mmap_mode='r' if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f'{path}: not readable as a numpy array ({error}); expected '
                         f'{_EXPECTED[what]}') from error


def _check(path: str, what: str, array: np.ndarray, shape: Tuple, kinds: str) -> None:
    shape_ok = array.ndim == len(shape) and all(want is None or want == got
                                                for want, got in zip(shape, array.shape))
    if not shape_ok or array.dtype.kind not in kinds:
        raise ValueError(f'{path}: shape {array.shape} dtype {array.dtype}, expected '
                         f'{_EXPECTED[what]}')


def open_fold(src: str, fold: int) -> FoldArrays:
    """Open and validate one fold without reading the image or mask data.

    Raises:
        FileNotFoundError: a fold file is missing (the message names it).
        ValueError: a file has the wrong shape or dtype, or the files disagree on N.
    """
    paths = fold_file_paths(src, fold)
    images = _load(paths['images'], 'images', mmap=True)
    _check(paths['images'], 'images', images, (None, PATCH_SIZE, PATCH_SIZE, 3), 'fiu')
    masks = _load(paths['masks'], 'masks', mmap=True)
    _check(paths['masks'], 'masks', masks, (None, PATCH_SIZE, PATCH_SIZE, 6), 'fiu')
    types = _load(paths['types'], 'types', mmap=False)
    _check(paths['types'], 'types', types, (None, ), 'US')
    counts = {
        key: len(array)
        for key, array in (('images', images), ('masks', masks), ('types', types))
    }
    if len(set(counts.values())) != 1:
        raise ValueError(f'fold {fold} files disagree on the number of images: ' +
                         ', '.join(f'{paths[key]}: {count}' for key, count in counts.items()))
    tissues = [(t.decode() if isinstance(t, bytes) else str(t)).strip() for t in types]
    return FoldArrays(images=images, masks=masks, tissues=tissues, paths=paths)


def images_to_uint8(images: np.ndarray, path: str = 'images') -> np.ndarray:
    """Round float 0-255 pixel values to uint8; values outside 0-255 (or NaN) are an error."""
    low, high = float(images.min()), float(images.max())
    if not (0 <= low and high <= 255):  # written this way so that NaN fails too
        raise ValueError(f'{path}: pixel values span [{low}, {high}], expected 0-255')
    return np.rint(images).astype(np.uint8)


def masks_to_labels(masks: np.ndarray) -> np.ndarray:
    """Instance-id masks ``(..., H, W, 6)`` to class-id maps ``(..., H, W)`` uint8.

    Compares the ids with 0 in their own dtype: casting them to uint8 first (as mmseg's
    projects/pannuke does) wraps ids 256, 512, ... to 0 and silently drops those nuclei.
    """
    labels = np.zeros(masks.shape[:-1], np.uint8)
    for channel in range(NUCLEUS_CHANNELS):
        labels[masks[..., channel] > 0] = channel + 1
    return labels


def png_complete(path: str) -> bool:
    """Whether ``path`` is a whole PNG file (signature at the start, IEND at the end)."""
    try:
        if osp.getsize(path) < len(_PNG_HEAD) + 12:
            return False
        with open(path, 'rb') as f:
            head = f.read(len(_PNG_HEAD))
            f.seek(-len(_PNG_TAIL), os.SEEK_END)
            return head == _PNG_HEAD and f.read() == _PNG_TAIL
    except OSError:
        return False


def _count_labels(summary: FoldSummary, labels: np.ndarray, path: str) -> None:
    counts = np.bincount(labels.ravel(), minlength=len(PANNUKE_CLASSES))
    if len(counts) > len(PANNUKE_CLASSES):
        raise ValueError(f'{path}: label ids up to {len(counts) - 1}, expected 0-5')
    summary.class_pixels += counts
    summary.class_images += counts > 0


def _read_done_label(image_path: str, label_path: str) -> Optional[np.ndarray]:
    """The label map of an image converted before, or None if either output must be redone."""
    if not (png_complete(image_path) and png_complete(label_path)):
        return None
    label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)  # None if damaged inside
    return label if label is not None and label.shape == (PATCH_SIZE, PATCH_SIZE) else None


def convert_fold(src: str,
                 dst: str,
                 fold: int,
                 chunk_size: int = 32,
                 progress: Optional[Callable[[int], None]] = None) -> FoldSummary:
    """Convert one fold to PNG images and label maps, resuming where a run left off.

    Images whose image and label PNG are both complete are skipped (their label maps are read
    back for the counts, and redone if unreadable); the rest are read ``chunk_size`` at a time
    from the memory-mapped arrays, so memory stays at a few hundred MB whatever the fold size.

    Args:
        src (str): PanNuke root holding ``Fold 1``, ``Fold 2``, ``Fold 3``.
        dst (str): Output root (``img_dir``, ``ann_dir``, ``types``, ``splits``).
        fold (int): Fold number.
        chunk_size (int): Images read per step.
        progress (Callable, optional): Called with the number of images done after each step.
    """
    arrays = open_fold(src, fold)
    names = [sample_name(fold, i) for i in range(len(arrays.tissues))]
    summary = FoldSummary(fold=fold, names=names, tissues=arrays.tissues)
    write_atomic(
        osp.join(dst, 'types', f'fold{fold}.txt'),
        ''.join(f'{name} {tissue}\n' for name, tissue in zip(names, arrays.tissues)).encode())
    write_name_list(osp.join(dst, 'splits', f'fold{fold}', 'all.txt'), names)

    def out(kind: str, index: int) -> str:
        return osp.join(dst, kind, names[index] + '.png')

    for start in range(0, len(names), chunk_size):
        indices = range(start, min(start + chunk_size, len(names)))
        todo = []
        for i in indices:
            label = _read_done_label(out('img_dir', i), out('ann_dir', i))
            if label is None:
                todo.append(i)
            else:
                _count_labels(summary, label, out('ann_dir', i))
        if todo:
            # Fancy indexing copies just these images out of the memory map.
            images = images_to_uint8(
                np.asarray(arrays.images[todo]),
                f"{arrays.paths['images']} (images {todo[0]}-{todo[-1]})")
            labels = masks_to_labels(np.asarray(arrays.masks[todo]))
            for image, label, i in zip(images, labels, todo):
                bgr = np.ascontiguousarray(image[..., ::-1])
                write_png_atomic(out('img_dir', i), bgr)
                write_png_atomic(out('ann_dir', i), label)
                _count_labels(summary, label, out('ann_dir', i))
        summary.written += len(todo)
        summary.skipped += len(indices) - len(todo)
        if progress is not None:
            progress(len(indices))
    return summary


def allocate_labeled_counts(sizes: Dict[str, int],
                            fractions: Dict[str, float] = PARTITIONS) -> Dict[str, Dict[str, int]]:
    """Labeled images per tissue for each fraction: stratified, exact totals, nested.

    Each tissue gets the floor or the ceiling of ``size * fraction`` (largest remainders get
    the ceilings) so that the total is ``ceil(N * fraction)``; a tissue's count never shrinks
    from a smaller fraction to a larger one, so taking prefixes of one order per tissue nests
    the partitions. A tissue with at least ``1 / fraction`` images gets at least one.
    """
    total = sum(sizes.values())
    previous = {tissue: 0 for tissue in sizes}
    result = {}
    for split, fraction in sorted(fractions.items(), key=lambda item: item[1]):
        counts = {t: max(math.floor(n * fraction), previous[t]) for t, n in sizes.items()}
        extra = math.ceil(total * fraction) - sum(counts.values())
        by_remainder = sorted(sizes, key=lambda t: (counts[t] - sizes[t] * fraction, t))
        for tissue in by_remainder:
            if extra > 0 and counts[tissue] < math.ceil(sizes[tissue] * fraction):
                counts[tissue] += 1
                extra -= 1
        if extra != 0:  # never seen in exhaustive small and random large searches; never hide it
            raise RuntimeError(f'cannot allocate {split} over tissue sizes {sizes}')
        result[split] = previous = counts
    return result


def stratified_partitions(
        names: Sequence[str],
        tissues: Sequence[str],
        seed: int,
        fractions: Dict[str, float] = PARTITIONS) -> Dict[str, Tuple[List[str], List[str]]]:
    """Split a training fold into nested labeled/unlabeled partitions stratified by tissue.

    Each tissue's images are put in one order drawn from a generator seeded by ``seed`` and
    the tissue name (so a tissue's order does not depend on which other tissues exist), and
    each partition labels a prefix of that order of the length
    :func:`allocate_labeled_counts` gives.

    Returns:
        ``{partition: (labeled, unlabeled)}``, each list sorted.
    """
    if len(names) != len(tissues) or len(set(names)) != len(names):
        raise ValueError('names must be unique and match tissues one to one')
    members: Dict[str, List[str]] = {}
    for name, tissue in sorted(zip(names, tissues)):
        members.setdefault(tissue, []).append(name)
    orders = {}
    for tissue, group in members.items():
        rng = np.random.default_rng([seed, zlib.crc32(tissue.encode('utf-8'))])
        orders[tissue] = [group[i] for i in rng.permutation(len(group))]
    counts = allocate_labeled_counts({t: len(g) for t, g in members.items()}, fractions)
    result = {}
    for split, per_tissue in counts.items():
        labeled = {name for t, k in per_tissue.items() for name in orders[t][:k]}
        result[split] = (sorted(labeled), sorted(n for n in names if n not in labeled))
    return result


def read_tissue_types(path: str) -> Tuple[List[str], List[str]]:
    """Read a ``types/fold{k}.txt`` file into ``(names, tissues)``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'tissue types not found: {path} (convert that fold first)')
    pairs = [line.split(maxsplit=1) for line in read_name_list(path)]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f'{path}: every line must be "<name> <tissue>"')
    return [p[0] for p in pairs], [p[1] for p in pairs]


def packaged_tissue_types(fold: int) -> List[str]:
    """Tissue type of each image of a fold in the PanNuke release the shipped lists come from.

    ``splits/pannuke/tissue_types.json`` stores them run-length encoded (provenance in the
    README beside it); the shipped ``splits/pannuke/fold{k}`` lists are
    :func:`stratified_partitions` of these types with seed 0.
    """
    with open(osp.join(PACKAGED_SPLITS, 'pannuke', 'tissue_types.json'), encoding='utf-8') as f:
        runs = json.load(f).get(f'fold{fold}')
    if runs is None:
        raise KeyError(f'no packaged PanNuke tissue types for fold {fold}')
    return [tissue for tissue, count in runs for _ in range(count)]


def packaged_mismatch(fold: int, tissues: Sequence[str]) -> Optional[str]:
    """None if a fold's tissue types are those of the release the shipped lists come from,
    otherwise the first difference in words."""
    expected = packaged_tissue_types(fold)
    if len(expected) != len(tissues):
        return f'fold {fold} has {len(tissues)} images, the release has {len(expected)}'
    for index, (want, got) in enumerate(zip(expected, tissues)):
        if want != got:
            return f'fold {fold} image {index} is {got!r}, in the release {want!r}'
    return None


def write_fold_partitions(dst: str,
                          fold: int,
                          seed: int = 0) -> Dict[str, Tuple[List[str], List[str]]]:
    """Write ``splits/fold{k}/<partition>/{labeled,unlabeled}.txt`` from the fold's types."""
    names, tissues = read_tissue_types(osp.join(dst, 'types', f'fold{fold}.txt'))
    parts = stratified_partitions(names, tissues, seed)
    for split, (labeled, unlabeled) in parts.items():
        base = osp.join(dst, 'splits', f'fold{fold}', split)
        write_name_list(osp.join(base, 'labeled.txt'), labeled)
        write_name_list(osp.join(base, 'unlabeled.txt'), unlabeled)
    return parts


def convert_pannuke(
    src: str,
    dst: str,
    folds: Iterable[int] = (1, 2, 3),
    train_fold: int = 1,
    seed: int = 0,
    chunk_size: int = 32,
    progress: Optional[Callable[[int, int, int], None]] = None
) -> Tuple[Dict[int, FoldSummary], Dict[str, Tuple[List[str], List[str]]]]:
    """Convert folds and write the training fold's partitions.

    The training fold need not be among ``folds`` if an earlier run converted it.

    Args:
        progress (Callable, optional): Called as ``progress(fold, fold_images, images_done)`` after
            each step.

    Returns:
        ``({fold: summary}, {partition: (labeled, unlabeled)})``.
    """
    # validate all folds before the long conversion of the first
    totals = {fold: len(open_fold(src, fold).tissues) for fold in dict.fromkeys(folds)}
    summaries = {}
    for fold, total in totals.items():
        report = None if progress is None else functools.partial(progress, fold, total)
        summaries[fold] = convert_fold(src, dst, fold, chunk_size, report)
    return summaries, write_fold_partitions(dst, train_fold, seed)
