"""Hooks of mmcora, registered in mmseg's ``HOOKS``."""
import copy
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from mmengine.dataset import ConcatDataset, RepeatDataset
from mmengine.hooks import Hook
from mmseg.registry import DATASETS, HOOKS


def leaf_datasets(dataset) -> Iterator:
    """The datasets holding samples inside (possibly nested) Concat/Repeat wrappers."""
    if isinstance(dataset, ConcatDataset):
        for inner in dataset.datasets:
            yield from leaf_datasets(inner)
    elif isinstance(dataset, RepeatDataset):
        yield from leaf_datasets(dataset.dataset)
    else:
        yield dataset


# Transforms that read ``seg_map_path``: mmseg's and the reasoning datasets' (which cuts one
# binary mask per query out of the same label map).
LABEL_MAP_LOADERS = ('LoadAnnotations', 'LoadReasoningAnnotations')
# Transforms that read a teacher's pseudo-label (and confidence) map.
PSEUDO_LABEL_LOADERS = ('LoadPseudoLabel', )

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND\xaeB`\x82'  # the IEND chunk's type and CRC close every complete PNG
JPEG_START = b'\xff\xd8\xff'  # start-of-image marker and the first segment's marker
JPEG_END = b'\xff\xd9'  # end-of-image marker
TAIL_BYTES = 1024  # where the end marker is looked for (tolerates a few bytes of padding)


def _pipeline_types(dataset) -> List[str]:
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', [])
    return [type(t).__name__ for t in transforms]


def file_keys(dataset) -> Tuple[str, ...]:
    """The keys of a dataset's items that name files its pipeline reads."""
    types = _pipeline_types(dataset)
    keys = ('img_path', )
    if any(name in LABEL_MAP_LOADERS for name in types):
        keys += ('seg_map_path', )
    if any(name in PSEUDO_LABEL_LOADERS for name in types):
        keys += ('pseudo_path', 'conf_path')
    return keys


def file_damage(path: str) -> Optional[str]:
    """Why an existing image file is visibly damaged, or None if it looks whole.

    Reads the first bytes and the last ``TAIL_BYTES`` only, never the pixels: a PNG (known by
    its signature) must hold its IEND chunk there, a JPEG (known by its start-of-image marker)
    its end-of-image marker. This catches empty files and files cut short by an interrupted
    copy or download, not damage inside a file. Files of other formats are only checked to
    be non-empty.

    Args:
        path (str): An existing file.

    Returns:
        str | None: What is wrong (e.g. ``'PNG without its IEND chunk at the end (truncated?)'``).
    """
    size = osp.getsize(path)
    if size == 0:
        return 'empty file'
    with open(path, 'rb') as f:
        head = f.read(len(PNG_SIGNATURE))
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    if head.startswith(PNG_SIGNATURE) and PNG_END not in tail:
        return 'PNG without its IEND chunk at the end (truncated?)'
    if head.startswith(JPEG_START) and JPEG_END not in tail:
        # a whole JPEG may carry data after its image (MPF pictures, motion photos): only a
        # file without any end-of-image marker is cut short
        with open(path, 'rb') as f:
            if JPEG_END not in f.read():
                return 'JPEG without its end-of-image marker (truncated?)'
    return None


def check_files(dataset,
                integrity: bool = True) -> Tuple[List[Tuple[int, str]], List[Tuple[int, str, str]]]:
    """The files a dataset lists that are missing, and those that are damaged.

    Args:
        dataset (BaseDataset): A dataset holding samples (not a wrapper).
        integrity (bool): Also look for damaged files (:func:`file_damage`).

    Returns:
        tuple: ``[(index, path)]`` of the missing files and ``[(index, path, why)]`` of the
        damaged ones, for every image (label map, pseudo-label) that the pipeline reads.
    """
    keys = file_keys(dataset)
    missing, damaged = [], []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        for path in (info.get(k) for k in keys):
            if not path:
                continue
            if not osp.isfile(path):
                missing.append((index, path))
            elif integrity:
                why = file_damage(path)
                if why is not None:
                    damaged.append((index, path, why))
    return missing, damaged


def missing_files(dataset) -> List[Tuple[int, str]]:
    """``(index, path)`` of every image (and label map or pseudo-label, if the pipeline loads
    them) that a dataset lists but the disk lacks. Index ``i`` is line ``i + 1`` of an mmseg
    ``ann_file``."""
    return check_files(dataset, integrity=False)[0]


def _where(dataset, index: int) -> str:
    """The list line of sample ``index``: lines of a name list; samples of another file
    (``ReasoningSegDataset``'s JSONL has a header and may skip records)."""
    ann_file = getattr(dataset, 'ann_file', '') or ''
    if not osp.isfile(ann_file):
        return f'{type(dataset).__name__} sample {index}'
    if ann_file.endswith(('.jsonl', '.json')):
        return f'{ann_file} sample {index}'
    return f'{ann_file} line {index + 1}'


def describe_missing(dataset, missing: List[Tuple[int, str]]) -> str:
    index, path = missing[0]
    ann_file = getattr(dataset, 'ann_file', '') or ''
    return (f'{len(missing)} files listed by {ann_file or type(dataset).__name__} are missing; '
            f'first: {_where(dataset, index)} -> {path}')


def describe_damaged(dataset, damaged: List[Tuple[int, str, str]]) -> str:
    index, path, why = damaged[0]
    ann_file = getattr(dataset, 'ann_file', '') or ''
    return (f'{len(damaged)} files listed by {ann_file or type(dataset).__name__} are damaged; '
            f'first: {_where(dataset, index)} -> {path}: {why}')


@HOOKS.register_module()
class DataFilesCheckHook(Hook):
    """Before the first iteration (and before testing), check every file the datasets list.

    mmseg's datasets read their lists without looking at the disk, so a wrong ``data_prefix``
    or a list line naming a missing file otherwise surfaces when a worker first loads it,
    possibly hours into training. This hook fails before training starts and names the list
    file, the line and the path. Under ``CORAStagedTrainLoop`` it also builds the datasets of
    the stages still to come (stage 3's pseudo-labeled images), so that a missing or
    mismatched pseudo-label fails before the first iteration, not at the stage's start.
    ``tools/test.py`` (``runner.test()``) checks the test datasets before evaluating.

    Besides existence it checks, cheaply, that each file is whole (:func:`file_damage`): an
    empty file, or a PNG or JPEG cut short (no end marker in its last bytes), is an error. The
    pixels are not decoded, so damage inside a file, and files of other formats beyond being
    non-empty, are left to the loader.

    Args:
        check_val (bool): Check the validation datasets too (before training).
        check_integrity (bool): Look for empty and truncated files, not only missing ones.

    Raises:
        FileNotFoundError: Some listed file is missing (the message also names damaged ones).
        ValueError: No file is missing, but some is damaged.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_val: bool = True, check_integrity: bool = True) -> None:
        self.check_val = check_val
        self.check_integrity = check_integrity

    def before_train(self, runner) -> None:
        datasets = [runner.train_dataloader.dataset]
        if self.check_val and getattr(runner, '_val_loop', None) is not None:
            datasets.append(runner.val_dataloader.dataset)
        datasets += self._later_stage_datasets(runner.train_loop)
        self._check(runner, datasets, 'training')

    def before_test(self, runner) -> None:
        self._check(runner, [runner.test_dataloader.dataset], 'testing')

    def _check(self, runner, datasets: list, before: str) -> None:
        missing_errors, damaged_errors = [], []
        for dataset in datasets:
            for leaf in leaf_datasets(dataset):
                missing, damaged = check_files(leaf, self.check_integrity)
                if missing:
                    missing_errors.append(describe_missing(leaf, missing))
                if damaged:
                    damaged_errors.append(describe_damaged(leaf, damaged))
        if missing_errors or damaged_errors:
            message = f'data check before {before}: ' + '; '.join(missing_errors + damaged_errors)
            raise (FileNotFoundError if missing_errors else ValueError)(message)
        whole = ' and whole' if self.check_integrity else ''
        runner.logger.info(f'data check before {before}: every listed image and label map '
                           f'exists{whole}')

    @staticmethod
    def _later_stage_datasets(loop) -> list:
        """The datasets of the stages with their own data that have iterations left (a
        dataset's own checks, such as ``SemiReasoningDataset``'s, run when it is built)."""
        stages, boundaries = getattr(loop, 'stages', ()), getattr(loop, 'boundaries', ())
        return [
            DATASETS.build(copy.deepcopy(stage['dataloader']['dataset']))
            for stage, (first, end) in zip(stages, boundaries)
            if stage['dataloader'] is not None and end > max(first, loop.iter)
        ]


__all__ = ['DataFilesCheckHook', 'check_files', 'file_damage', 'leaf_datasets', 'missing_files']
