"""Deterministic synthetic street scenes in the exact Cityscapes layout ("toy city").

The toy city is mmcora's embedded default data set: it is generated on demand (never shipped),
is read by mmseg's own ``CityscapesDataset`` unchanged, and behaves like a small street data
set in the ways the project's claims depend on: several appearance families per class and a
per-scene weather (:mod:`.toy_city_looks`), so that a few labeled images cannot cover what the
whole training set shows; several instances of each thing class at positions and depths that
make spatial relations (left of, behind, ...) meaningful, touching each other in parked rows,
groups and racks, separated only by the instance map; thin classes (poles, signs, people)
several pixels wide; colours that overlap across classes so colour alone does not identify a
class.

Files written under ``root`` (one scene per id ``<city>_<seq:06d>_<frame:06d>``)::

    leftImg8bit/{train,val}/<city>/<id>_leftImg8bit.png         RGB image
    gtFine/{train,val}/<city>/<id>_gtFine_labelTrainIds.png     trainIds, 255 = void
    gtFine/{train,val}/<city>/<id>_gtFine_labelIds.png          Cityscapes labelIds
    gtFine/{train,val}/<city>/<id>_gtFine_instanceIds.png       uint16, labelId*1000+k
    splits/{1_30,1_16,1_8,1_4}/{labeled,unlabeled}.txt          partitions of train
    splits/train.txt                                            all train scenes (full labels)
    splits/val.txt
    toy_city.json                                               manifest (parameters)
"""
import json
import logging
import os
import os.path as osp
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .partitions import PARTITIONS, partition_names, write_name_list
from .toy_city_render import LABEL_IDS, render_scene

MANIFEST = 'toy_city.json'
# 2: appearance families and weather, walls in perspective, touching objects, thicker thin
# classes. A tree of another version is regenerated on first use (ensure_toy_city).
FORMAT_VERSION = 2
TRAIN_CITIES = ('aachen', 'bochum', 'bremen', 'cologne')
VAL_CITIES = ('frankfurt', 'lindau', 'munster')

# trainId -> Cityscapes labelId, for the labelIds and instanceIds files.
TRAIN_TO_LABEL_ID = np.full(256, 0, dtype=np.uint8)
for _train_id, _label_id in LABEL_IDS.items():
    TRAIN_TO_LABEL_ID[_train_id] = _label_id


@dataclass(frozen=True)
class ToyCitySpec:
    """Everything that determines the generated files (stored in the manifest).

    Args:
        num_train (int): Number of training scenes.
        num_val (int): Number of validation scenes.
        height (int): Image height in pixels (Cityscapes' 1:2 aspect by default).
        width (int): Image width in pixels.
        seed (int): Master seed; scene ``i`` of a split depends only on (seed, split, i).
    """
    num_train: int = 240
    num_val: int = 40
    height: int = 128
    width: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_train < 30:
            raise ValueError(f'num_train={self.num_train}: the 1/30 partition needs >= 30 scenes')
        if self.num_val < 1 or self.height < 64 or self.width < 64:
            raise ValueError(f'num_val >= 1 and an image of at least 64x64 pixels are needed, got '
                             f'num_val={self.num_val}, {self.height}x{self.width}')


def scene_ids(split: str, count: int) -> List[Tuple[str, str]]:
    """``(city, '<city>_<seq>_<frame>')`` for the scenes of a split, in index order."""
    cities = TRAIN_CITIES if split == 'train' else VAL_CITIES
    ids = []
    for index in range(count):
        city = cities[index % len(cities)]
        seq, frame = index // len(cities), 19 + index % 7
        ids.append((city, f'{city}_{seq:06d}_{frame:06d}'))
    return ids


def _write_png(path: str, array: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, array):
        raise OSError(f'could not write {path}')


def write_scene(root: str, split: str, city: str, scene_id: str, image: np.ndarray,
                train_ids: np.ndarray, instances: np.ndarray) -> None:
    """Write one scene's image and ground-truth files in Cityscapes naming."""
    _write_png(
        osp.join(root, 'leftImg8bit', split, city, f'{scene_id}_leftImg8bit.png'),
        image[..., ::-1])  # RGB -> BGR for OpenCV
    gt_dir = osp.join(root, 'gtFine', split, city)
    label_ids = TRAIN_TO_LABEL_ID[train_ids]
    _write_png(osp.join(gt_dir, f'{scene_id}_gtFine_labelTrainIds.png'), train_ids)
    _write_png(osp.join(gt_dir, f'{scene_id}_gtFine_labelIds.png'), label_ids)
    instance_ids = label_ids.astype(np.int32)
    thing = instances > 0
    instance_ids[thing] = label_ids[thing].astype(np.int32) * 1000 + instances[thing] - 1
    _write_png(
        osp.join(gt_dir, f'{scene_id}_gtFine_instanceIds.png'), instance_ids.astype(np.uint16))


def generate_toy_city(root: str, spec: ToyCitySpec = ToyCitySpec()) -> Dict[str, int]:
    """Generate a complete toy city tree at ``root`` (which must not exist yet).

    Files are written to a temporary sibling directory that is renamed to ``root`` only when
    complete, so an interrupted run never leaves a partial tree behind, and several processes
    (e.g. the ranks of a distributed run) may call this at once: one rename wins.

    Returns:
        Number of scenes per split.
    """
    root = osp.abspath(root)
    parent = osp.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.tmp-', dir=parent)
    try:
        names = {}
        split_counts = (('train', spec.num_train), ('val', spec.num_val))
        for split_index, (split, count) in enumerate(split_counts):
            names[split] = []
            for index, (city, scene_id) in enumerate(scene_ids(split, count)):
                rng = np.random.default_rng([spec.seed, split_index, index])
                image, train_ids, instances = render_scene(rng, spec.height, spec.width)
                write_scene(tmp, split, city, scene_id, image, train_ids, instances)
                names[split].append(f'{city}/{scene_id}')
        for split, (labeled, unlabeled) in partition_names(names['train'], spec.seed).items():
            write_name_list(osp.join(tmp, 'splits', split, 'labeled.txt'), labeled)
            write_name_list(osp.join(tmp, 'splits', split, 'unlabeled.txt'), unlabeled)
        write_name_list(osp.join(tmp, 'splits', 'train.txt'), names['train'])
        write_name_list(osp.join(tmp, 'splits', 'val.txt'), names['val'])
        with open(osp.join(tmp, MANIFEST), 'w', encoding='utf-8') as f:
            json.dump(dict(format_version=FORMAT_VERSION, **asdict(spec)), f, indent=2)
        try:
            os.rename(tmp, root)
        except OSError:
            if not osp.isfile(osp.join(root, MANIFEST)):  # lost to something that is not us
                raise
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return dict(train=spec.num_train, val=spec.num_val)


def _replace_stale(root: str, spec: ToyCitySpec, found_version) -> None:
    """Swap a tree of another generator version for a new one (derived files go with it)."""
    print_log(
        f'{root} was generated by toy city format {found_version}, this mmcora makes '
        f'format {FORMAT_VERSION}: regenerating it (files derived from the old scenes, '
        'such as its instruction sets, are removed with it)',
        logger='current',
        level=logging.WARNING)
    stale = tempfile.mkdtemp(
        prefix=f'.{osp.basename(root)}.stale-', dir=osp.dirname(osp.abspath(root)))
    os.rename(root, osp.join(stale, 'old'))
    shutil.rmtree(stale, ignore_errors=True)
    _generate_logged(root, spec)


def _generate_logged(root: str, spec: ToyCitySpec) -> None:
    start = time.perf_counter()
    generate_toy_city(root, spec)
    print_log(
        f'generated the toy city at {root} ({spec.num_train} train, {spec.num_val} '
        f'val scenes of {spec.height}x{spec.width}, format {FORMAT_VERSION}) in '
        f'{time.perf_counter() - start:.1f}s',
        logger='current')


def ensure_toy_city(root: str, spec: ToyCitySpec = ToyCitySpec()) -> str:
    """Generate the toy city at ``root`` unless an identical one is already there.

    A tree made by another version of the generator (same parameters, older
    ``format_version`` in its manifest) is stale and is regenerated in place.

    Raises:
        FileExistsError: ``root`` exists but is not a toy city tree, or was generated with
            other parameters (the message names the keys that differ).
    """
    manifest_path = osp.join(root, MANIFEST)
    if not osp.exists(root):
        _generate_logged(root, spec)
        return root
    if not osp.isfile(manifest_path):
        raise FileExistsError(
            f'{root} exists but holds no {MANIFEST}: it is not a generated toy city. '
            'Choose another data_root or remove the directory.')
    with open(manifest_path, encoding='utf-8') as f:
        found = json.load(f)
    wanted = dict(format_version=FORMAT_VERSION, **asdict(spec))
    diff = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
    if set(diff) == {'format_version'}:
        _replace_stale(root, spec, found.get('format_version'))
        return root
    if diff:
        detail = ', '.join(f'{k}: on disk {a!r}, asked {b!r}' for k, (a, b) in diff.items())
        raise FileExistsError(f'{manifest_path} was generated with other parameters ({detail}). '
                              'Remove the directory to regenerate it, or use another data_root.')
    return root


__all__ = ['ToyCitySpec', 'generate_toy_city', 'ensure_toy_city', 'scene_ids', 'PARTITIONS']
