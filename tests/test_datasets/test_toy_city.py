"""Toy city generator: determinism, Cityscapes layout, content, partitions, on-demand use."""
import glob
import hashlib
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmcora.datasets import (ToyCitySpec, ensure_toy_city, generate_toy_city, partition_names,
                             read_name_list, toy_city_generator)
from mmcora.datasets.toy_city_generator import scene_ids
from mmcora.datasets.toy_city_looks import (FACADE_FAMILIES, FOLIAGE_FAMILIES, ROAD_FAMILIES,
                                            SKY_FAMILIES, TERRAIN_FAMILIES, WALK_FAMILIES)
from mmcora.datasets.toy_city_render import (LABEL_IDS, PERSON, POLE, SIGN, THING_CLASSES,
                                             draw_street_and_look, render_scene)

NAME = re.compile(r'^([a-z]+)_(\d{6})_(\d{6})$')
USED_CLASSES = {0, 1, 2, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18}


def _tree_digest(root: str) -> dict:
    files = sorted(glob.glob(osp.join(root, '**', '*.*'), recursive=True))
    return {osp.relpath(f, root): hashlib.sha256(open(f, 'rb').read()).hexdigest() for f in files}


def _labels(root: str, split: str) -> list:
    paths = sorted(glob.glob(osp.join(root, 'gtFine', split, '*', '*_labelTrainIds.png')))
    return [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in paths]


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    spec = ToyCitySpec(num_train=30, num_val=2, seed=7)
    generate_toy_city(str(tmp_path / 'a'), spec)
    generate_toy_city(str(tmp_path / 'b'), spec)
    digest = _tree_digest(str(tmp_path / 'a'))
    assert digest == _tree_digest(str(tmp_path / 'b'))
    generate_toy_city(str(tmp_path / 'c'), ToyCitySpec(num_train=30, num_val=2, seed=8))
    other = _tree_digest(str(tmp_path / 'c'))
    images = [k for k in digest if k.endswith('_leftImg8bit.png')]
    assert all(digest[k] != other[k] for k in images)


def test_cityscapes_layout_and_naming(toy_city_root, toy_city_spec):
    for split, count in (('train', toy_city_spec['num_train']), ('val', toy_city_spec['num_val'])):
        images = sorted(glob.glob(osp.join(toy_city_root, 'leftImg8bit', split, '*', '*.png')))
        assert len(images) == count
        for path in images:
            city = osp.basename(osp.dirname(path))
            stem = osp.basename(path)[:-len('_leftImg8bit.png')]
            match = NAME.match(stem)
            assert match and match.group(1) == city and path.endswith('_leftImg8bit.png')
            image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            assert image.shape == (128, 256, 3) and image.dtype == np.uint8
            gt = osp.join(toy_city_root, 'gtFine', split, city, stem + '_gtFine_')
            train_ids = cv2.imread(gt + 'labelTrainIds.png', cv2.IMREAD_UNCHANGED)
            label_ids = cv2.imread(gt + 'labelIds.png', cv2.IMREAD_UNCHANGED)
            instance_ids = cv2.imread(gt + 'instanceIds.png', cv2.IMREAD_UNCHANGED)
            assert train_ids.shape == label_ids.shape == instance_ids.shape == (128, 256)
            assert train_ids.dtype == np.uint8 and instance_ids.dtype == np.uint16
            assert set(np.unique(train_ids)) <= USED_CLASSES | {255}
            for train_id in np.unique(train_ids):
                assert set(np.unique(label_ids[train_ids == train_id])) == {LABEL_IDS[train_id]}
            thing = instance_ids >= 1000
            assert np.array_equal(instance_ids[thing] // 1000, label_ids[thing])
            assert np.array_equal(np.isin(train_ids, THING_CLASSES), thing)


def test_mmseg_cityscapes_dataset_reads_it_unchanged(toy_city_root):
    init_default_scope('mmseg')
    from mmseg.datasets import CityscapesDataset
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    for split, ann, count in (('train', 'splits/1_4/labeled.txt', 8),
                              ('train', 'splits/1_4/unlabeled.txt', 22), ('val', 'splits/val.txt',
                                                                          6)):
        dataset = CityscapesDataset(
            data_root=toy_city_root,
            ann_file=ann,
            pipeline=pipeline,
            data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}'))
        assert len(dataset) == count
        sample = dataset[0]
        labels = sample['data_samples'].gt_sem_seg.data
        assert tuple(sample['inputs'].shape) == (3, 128, 256)
        assert set(labels.unique().tolist()) <= USED_CLASSES | {255}


def test_content_classes_instances_and_positions(toy_city_root):
    labels = _labels(toy_city_root, 'train')
    present = set().union(*(set(np.unique(label).tolist()) for label in labels))
    assert present == USED_CLASSES | {255}
    assert min(len(np.unique(label)) for label in labels) >= 10
    cars_per_image, car_x = [], []
    for label in labels:
        count, _, stats, centroids = cv2.connectedComponentsWithStats(
            (label == 13).astype(np.uint8))
        big = stats[1:, cv2.CC_STAT_AREA] >= 20
        cars_per_image.append(int(big.sum()))
        car_x += centroids[1:][big, 0].tolist()
    assert np.mean(np.array(cars_per_image) >= 2) >= 0.8
    assert np.std(car_x) > 256 / 10  # cars appear across the width, not at a fixed place


def test_instances_touch_and_the_instance_map_separates_them():
    # Parked rows, groups and racks: one connected component can hold several instances.
    merged = 0
    for index in range(20):
        _, train_ids, instances = render_scene(np.random.default_rng([5, index]), 128, 256)
        thing = np.isin(train_ids, THING_CLASSES)
        assert (instances[thing] > 0).all() and not instances[~thing].any()
        for class_id in THING_CLASSES:
            count, components = cv2.connectedComponents((train_ids == class_id).astype(np.uint8))
            merged += sum(
                len(np.unique(instances[components == comp])) > 1 for comp in range(1, count))
    assert merged >= 10


def test_thin_classes_are_several_pixels_wide():
    # Poles, signs and people at least 3 px across (the old generator drew 1-2 px poles).
    widths = {POLE: [], SIGN: [], PERSON: []}
    for index in range(20):
        _, train_ids, _ = render_scene(np.random.default_rng([6, index]), 128, 256)
        for class_id, found in widths.items():
            for row in train_ids:
                runs = np.diff(np.flatnonzero(np.diff(np.r_[0, row == class_id, 0])))[::2]
                found += runs.tolist()
    for class_id, found in widths.items():
        assert found and np.median(found) >= 3, class_id


def test_appearance_families_vary_across_scenes():
    # Every family of every class is drawn somewhere in 240 scenes, and the 8 labeled
    # scenes of 1/30 miss some: labels, not capacity, decide what a segmenter has seen.
    # Scene i of train is drawn from default_rng([seed, 0, i]) (generate_toy_city).
    looks = [
        draw_street_and_look(np.random.default_rng([0, 0, i]), 128, 256)[1] for i in range(240)
    ]
    names = [f'{city}/{name}' for city, name in scene_ids('train', 240)]
    labeled = set(partition_names(names, 0)['1_30'][0])
    few = [look for look, name in zip(looks, names) if name in labeled]
    assert len(few) == 8
    missing = 0
    for attr, families in (('sky', SKY_FAMILIES), ('road', ROAD_FAMILIES), ('walk', WALK_FAMILIES),
                           ('terrain', TERRAIN_FAMILIES), ('foliage', FOLIAGE_FAMILIES)):
        assert {getattr(look, attr) for look in looks} == set(families)
        missing += len(set(families) - {getattr(look, attr) for look in few})
    assert {f for look in looks for f in look.facades} == set(FACADE_FAMILIES)
    assert missing >= 3
    combos = {(look.sky, look.road, look.walk, look.terrain, look.foliage) for look in looks}
    assert len(combos) > 150


def test_colour_alone_does_not_identify_classes(toy_city_root):
    # A nearest-mean colour classifier fit on train pixels must fall well short on val.
    def pixels(split):
        xs, ys = [], []
        for path in sorted(glob.glob(osp.join(toy_city_root, 'leftImg8bit', split, '*', '*'))):
            gt = path.replace('leftImg8bit', 'gtFine', 1).replace('_leftImg8bit.png',
                                                                  '_gtFine_labelTrainIds.png')
            label = cv2.imread(gt, cv2.IMREAD_UNCHANGED).ravel()
            keep = label != 255
            xs.append(cv2.imread(path).reshape(-1, 3)[keep].astype(np.float32))
            ys.append(label[keep])
        return np.concatenate(xs), np.concatenate(ys)

    x, y = pixels('train')
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    xv, yv = pixels('val')
    pred = classes[np.argmin(((xv[:, None] - means[None])**2).sum(-1), axis=1)]
    per_class = [np.mean(pred[yv == c] == c) for c in classes if (yv == c).sum() > 50]
    assert np.mean(per_class) < 0.6


def test_partition_lists(toy_city_root):
    train = {
        f'{osp.basename(osp.dirname(p))}/{osp.basename(p)[:-16]}'
        for p in glob.glob(osp.join(toy_city_root, 'leftImg8bit', 'train', '*', '*.png'))
    }
    expected = {'1_30': 1, '1_16': 2, '1_8': 4, '1_4': 8}
    for split, count in expected.items():
        labeled = read_name_list(osp.join(toy_city_root, 'splits', split, 'labeled.txt'))
        unlabeled = read_name_list(osp.join(toy_city_root, 'splits', split, 'unlabeled.txt'))
        assert len(labeled) == count and set(labeled) | set(unlabeled) == train
        assert not set(labeled) & set(unlabeled)
    assert len(read_name_list(osp.join(toy_city_root, 'splits', 'val.txt'))) == 6


def test_ensure_reuses_and_refuses_mismatch(tmp_path, toy_city_root, toy_city_spec):
    spec = ToyCitySpec(**toy_city_spec)
    before = os.stat(osp.join(toy_city_root, 'toy_city.json')).st_mtime_ns
    assert ensure_toy_city(toy_city_root, spec) == toy_city_root
    assert os.stat(osp.join(toy_city_root, 'toy_city.json')).st_mtime_ns == before
    with pytest.raises(FileExistsError, match=r'seed: on disk 0, asked 1'):
        ensure_toy_city(toy_city_root, ToyCitySpec(**{**toy_city_spec, 'seed': 1}))
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'keep.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='not a generated toy city'):
        ensure_toy_city(str(tmp_path / 'mine'), spec)
    assert (tmp_path / 'mine' / 'keep.txt').read_text() == 'user data'


def test_stale_format_is_regenerated(tmp_path):
    import json
    spec = ToyCitySpec(num_train=30, num_val=2)
    root = str(tmp_path / 'toy')
    generate_toy_city(root, spec)
    manifest = osp.join(root, 'toy_city.json')
    with open(manifest) as f:
        data = json.load(f)
    data['format_version'] = 1
    with open(manifest, 'w') as f:
        json.dump(data, f)
    (tmp_path / 'toy' / 'instructions').mkdir()
    (tmp_path / 'toy' / 'instructions' / 'old.jsonl').write_text('{}')
    assert ensure_toy_city(root, spec) == root
    with open(manifest) as f:
        assert json.load(f)['format_version'] == toy_city_generator.FORMAT_VERSION
    assert not osp.exists(osp.join(root, 'instructions'))
    assert sorted(os.listdir(tmp_path)) == ['toy']


def test_generation_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError('disk full')
        return original(*args, **kwargs)

    original = toy_city_generator.write_scene
    monkeypatch.setattr(toy_city_generator, 'write_scene', failing_write)
    with pytest.raises(OSError, match='disk full'):
        generate_toy_city(str(tmp_path / 'toy'), ToyCitySpec(num_train=30, num_val=2))
    assert os.listdir(tmp_path) == []


def test_spec_validation():
    with pytest.raises(ValueError, match='num_train=10'):
        ToyCitySpec(num_train=10)
    with pytest.raises(ValueError, match='64x64'):
        ToyCitySpec(height=32)
