"""Hooks of mmcora, registered in mmseg's ``HOOKS``."""
import copy
import os.path as osp
from typing import Iterator, List, Tuple

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


def _reads_label_maps(dataset) -> bool:
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', [])
    return any(type(t).__name__ in LABEL_MAP_LOADERS for t in transforms)


def missing_files(dataset) -> List[Tuple[int, str]]:
    """``(index, path)`` of every image (and label map, if the pipeline loads them) that a
    dataset lists but the disk lacks. Index ``i`` is line ``i + 1`` of an mmseg ``ann_file``."""
    keys = ('img_path', 'seg_map_path') if _reads_label_maps(dataset) else ('img_path', )
    missing = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        missing += [(index, info[k]) for k in keys if info.get(k) and not osp.isfile(info[k])]
    return missing


def describe_missing(dataset, missing: List[Tuple[int, str]]) -> str:
    index, path = missing[0]
    ann_file = getattr(dataset, 'ann_file', '') or ''
    where = (f'{ann_file} line {index + 1}'
             if osp.isfile(ann_file) else f'{type(dataset).__name__} sample {index}')
    return (f'{len(missing)} files listed by {ann_file or type(dataset).__name__} are missing; '
            f'first: {where} -> {path}')


@HOOKS.register_module()
class DataFilesCheckHook(Hook):
    """Before the first iteration, check that every file the datasets list exists.

    mmseg's datasets read their lists without looking at the disk, so a wrong ``data_prefix``
    or a list line naming a missing file otherwise surfaces when a worker first loads it,
    possibly hours into training. This hook fails before training starts and names the list
    file, the line and the path. Under ``CORAStagedTrainLoop`` it also builds the datasets of
    the stages still to come (stage 3's pseudo-labeled images), so that a missing or
    mismatched pseudo-label fails before the first iteration, not at the stage's start.

    Args:
        check_val (bool): Check the validation datasets too.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_val: bool = True) -> None:
        self.check_val = check_val

    def before_train(self, runner) -> None:
        datasets = [runner.train_dataloader.dataset]
        if self.check_val and getattr(runner, '_val_loop', None) is not None:
            datasets.append(runner.val_dataloader.dataset)
        datasets += self._later_stage_datasets(runner.train_loop)
        errors = []
        for dataset in datasets:
            for leaf in leaf_datasets(dataset):
                missing = missing_files(leaf)
                if missing:
                    errors.append(describe_missing(leaf, missing))
        if errors:
            raise FileNotFoundError('data check before training: ' + '; '.join(errors))
        runner.logger.info('data check: every listed image and label map exists')

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


__all__ = ['DataFilesCheckHook', 'leaf_datasets', 'missing_files']
