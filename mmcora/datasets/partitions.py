"""Labeled/unlabeled partitions of a training set, as lists mmseg datasets read directly.

A list file holds one scene name per line, relative to the dataset's ``data_prefix`` and
without suffix (``aachen/aachen_000000_000019``); mmseg's ``BaseSegDataset`` appends
``img_suffix``/``seg_map_suffix`` when it is given the file as ``ann_file``.

The Cityscapes partitions of UniMatch (1/30, 1/16, 1/8, 1/4, 1/2 and val) ship inside the
package under ``mmcora/datasets/splits/cityscapes`` (provenance in the README beside them);
:func:`install_split_lists` copies them into a data root so configs can name them relative to
``data_root`` as mmseg configs name every other file.
"""
import math
import os
import os.path as osp
import shutil
from typing import Dict, List, Tuple

import numpy as np

from ..utils.name_lists import read_name_list, write_name_list  # noqa: F401 (re-exported)

# Partition name -> fraction of the training set that is labeled.
PARTITIONS: Dict[str, float] = {'1_30': 1 / 30, '1_16': 1 / 16, '1_8': 1 / 8, '1_4': 1 / 4}
PACKAGED_SPLITS = osp.join(osp.dirname(osp.abspath(__file__)), 'splits')


def partition_names(names: List[str], seed: int) -> Dict[str, Tuple[List[str], List[str]]]:
    """Split scene names into nested labeled/unlabeled partitions.

    One seeded permutation serves every partition, so 1/30 ⊂ 1/16 ⊂ 1/8 ⊂ 1/4; the labeled
    count is ``ceil(len(names) * fraction)``.

    Returns:
        ``{partition: (labeled, unlabeled)}``, each list sorted.
    """
    order = np.random.default_rng([seed, 30]).permutation(len(names))
    result = {}
    for split, fraction in PARTITIONS.items():
        count = math.ceil(len(names) * fraction)
        labeled = {names[i] for i in order[:count]}
        result[split] = (sorted(labeled), sorted(n for n in names if n not in labeled))
    return result


def packaged_split_file(dataset: str, split: str, part: str = 'labeled') -> str:
    """Path of a partition list shipped with mmcora.

    Args:
        dataset (str): ``'cityscapes'`` or ``'pannuke'``.
        split (str): Cityscapes: ``'1_30'``, ``'1_16'``, ``'1_8'``, ``'1_4'``, ``'1_2'`` or
            ``'val'``; PanNuke: ``'fold{k}/<partition>'`` for training fold k.
        part (str): ``'labeled'`` or ``'unlabeled'`` (ignored for ``'val'``).
    """
    name = 'val.txt' if split == 'val' else osp.join(split, f'{part}.txt')
    path = osp.join(PACKAGED_SPLITS, dataset, name)
    if not osp.isfile(path):
        available = sorted(os.listdir(PACKAGED_SPLITS)) if osp.isdir(PACKAGED_SPLITS) else []
        raise FileNotFoundError(f'no packaged list {dataset}/{name} (datasets: {available})')
    return path


def install_split_lists(dataset: str, data_root: str) -> str:
    """Copy a dataset's packaged partition lists to ``<data_root>/splits``.

    Returns:
        The directory written.
    """
    src = osp.join(PACKAGED_SPLITS, dataset)
    if not osp.isdir(src):
        raise FileNotFoundError(f'no packaged partitions for {dataset!r} in {PACKAGED_SPLITS}')
    dst = osp.join(data_root, 'splits')
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst
