"""PanNuke: conversion of fake folds in the official formats, the dataset, partitions, CLI."""
import itertools
import math
import os
import os.path as osp
import random
import runpy
import shutil
import sys

import cv2
import mmcv
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmcora.datasets import PARTITIONS, packaged_split_file, pannuke, read_name_list
from mmcora.datasets.pannuke import (PANNUKE_CLASSES, PanNukeDataset, allocate_labeled_counts,
                                     convert_fold, convert_pannuke, open_fold,
                                     stratified_partitions)
from ..conftest import REPO

# PanNuke's README: mask channels 0-4 in this order (channel 5 is background).
CHANNEL_NAMES = ('neoplastic', 'inflammatory', 'connective', 'dead', 'epithelial')
FOLD_TISSUES = {
    1: ['Breast'] * 5 + ['Colon'] * 4 + ['Kidney'] * 2 + ['Lung'],
    2: ['Breast', 'Colon', 'Liver', 'Liver'],
    3: ['Skin', 'Breast', 'Breast']
}
# Nuclei placed in every image: (grid cell, channel, instance id). 256 and 512 become 0 under
# a uint8 cast, 300 becomes 44: the trap of mmseg's projects/pannuke converter.
FIXED_NUCLEI = [((0, 0), 1, 256.0), ((0, 1), 3, 512.0), ((0, 2), 0, 300.0), ((0, 3), 4, 1024.0),
                ((0, 4), 2, 7.0)]
CELL, NUCLEUS = 32, 20


def nucleus_slice(cell):
    """Pixels of the square nucleus drawn in a grid cell."""
    row, col = cell
    return (slice(row * CELL + 4,
                  row * CELL + 4 + NUCLEUS), slice(col * CELL + 4, col * CELL + 4 + NUCLEUS))


def fake_sample(rng):
    """One patch as PanNuke stores it, and the label map expected from it."""
    image = rng.integers(0, 256, (256, 256, 3)).astype(np.float64)
    masks = np.zeros((256, 256, 6), np.float64)
    expected = np.zeros((256, 256), np.uint8)
    nuclei = list(FIXED_NUCLEI)
    next_id = 250.0
    for row in range(1, 8):
        for col in range(8):
            if rng.random() < 0.5:
                nuclei.append(((row, col), int(rng.integers(0, 5)), next_id))
                next_id += 3.0  # ids run past 256 as in crowded real patches
    for cell, channel, instance in nuclei:
        masks[nucleus_slice(cell) + (channel, )] = instance
        expected[nucleus_slice(cell)] = channel + 1
    masks[..., 5] = (expected == 0).astype(np.float64)
    return image, masks, expected


def write_fold(root, fold, tissues, seed=0):
    """Write a fold in the official layout; return (uint8 RGB images, expected labels)."""
    rng = np.random.default_rng([seed, fold])
    samples = [fake_sample(rng) for _ in tissues]
    images = np.stack([s[0] for s in samples])
    masks = np.stack([s[1] for s in samples])
    paths = pannuke.fold_file_paths(str(root), fold)
    for key, array in (('images', images), ('masks', masks), ('types', np.array(tissues))):
        os.makedirs(osp.dirname(paths[key]), exist_ok=True)
        np.save(paths[key], array)
    return images.astype(np.uint8), np.stack([s[2] for s in samples])


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp('pannuke_src')
    expected = {fold: write_fold(root, fold, tissues) for fold, tissues in FOLD_TISSUES.items()}
    return str(root), expected


@pytest.fixture(scope='module')
def converted(tmp_path_factory, source):
    dst = str(tmp_path_factory.mktemp('pannuke_dst'))
    summaries, parts = convert_pannuke(
        source[0], dst, folds=(1, 2, 3), train_fold=1, seed=0, chunk_size=5)
    return dst, summaries, parts


def test_layout_names_and_types(converted):
    dst, summaries, _ = converted
    for fold, tissues in FOLD_TISSUES.items():
        names = [f'fold{fold}/fold{fold}_{i:04d}' for i in range(len(tissues))]
        assert read_name_list(osp.join(dst, 'splits', f'fold{fold}', 'all.txt')) == names
        assert read_name_list(osp.join(
            dst, 'types', f'fold{fold}.txt')) == [f'{n} {t}' for n, t in zip(names, tissues)]
        for name in names:
            assert osp.isfile(osp.join(dst, 'img_dir', name + '.png'))
            assert osp.isfile(osp.join(dst, 'ann_dir', name + '.png'))
        assert (summaries[fold].written, summaries[fold].skipped) == (len(tissues), 0)
    assert not [f for _, _, files in os.walk(dst) for f in files if f.endswith('.part')]


def test_labels_keep_nuclei_with_ids_above_255(source, converted):
    dst = converted[0]
    for fold, (_, expected) in source[1].items():
        masks = np.load(pannuke.fold_file_paths(source[0], fold)['masks'], mmap_mode='r')
        for i, want in enumerate(expected):
            label = cv2.imread(
                osp.join(dst, 'ann_dir', f'fold{fold}', f'fold{fold}_{i:04d}.png'),
                cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.shape == (256, 256)
            assert set(np.unique(label)) <= set(range(6))
            np.testing.assert_array_equal(label, want)
            for cell, channel, instance in FIXED_NUCLEI:
                region = nucleus_slice(cell)
                assert (label[region] == channel + 1).all(), (fold, i, instance)
                if instance in (256.0, 512.0, 1024.0):  # the data really exercises the trap
                    wrapped = masks[i][region + (channel, )].astype(np.int64).astype(np.uint8)
                    assert not wrapped.any()


def test_class_order_matches_mask_channels(converted):
    assert PanNukeDataset.METAINFO['classes'] == ('background', ) + CHANNEL_NAMES
    assert len(PanNukeDataset.METAINFO['palette']) == 6
    label = cv2.imread(
        osp.join(converted[0], 'ann_dir', 'fold1', 'fold1_0000.png'), cv2.IMREAD_UNCHANGED)
    for cell, channel, _ in FIXED_NUCLEI:
        assert PANNUKE_CLASSES[label[nucleus_slice(cell)][0, 0]] == CHANNEL_NAMES[channel]
    assert PANNUKE_CLASSES[label[255, 255]] == 'background'


def test_image_round_trip_rgb(source, converted):
    for fold, (images, _) in source[1].items():
        for i, want in enumerate(images):
            path = osp.join(converted[0], 'img_dir', f'fold{fold}', f'fold{fold}_{i:04d}.png')
            np.testing.assert_array_equal(mmcv.imread(path, channel_order='rgb'), want)
            np.testing.assert_array_equal(cv2.imread(path), want[..., ::-1])


def test_rounding_and_range_of_float_pixels():
    values = np.array([[0.0, 0.4, 0.6, 254.5001, 255.0]])
    np.testing.assert_array_equal(pannuke.images_to_uint8(values), [[0, 0, 1, 255, 255]])
    for bad in (np.array([-1.0, 3.0]), np.array([256.0]), np.array([np.nan, 1.0])):
        with pytest.raises(ValueError, match='my/images.npy.*expected 0-255'):
            pannuke.images_to_uint8(bad, 'my/images.npy')


def test_summary_counts_classes(source, converted):
    summary = converted[1][1]
    expected = source[1][1][1]
    np.testing.assert_array_equal(summary.class_pixels, np.bincount(expected.ravel(), minlength=6))
    np.testing.assert_array_equal(summary.class_images,
                                  [(expected == c).any(axis=(1, 2)).sum() for c in range(6)])


def test_dataset_reads_partition_through_mmseg_pipeline(source, converted):
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS
    ann_file = 'splits/fold1/1_4/labeled.txt'
    dataset = DATASETS.build(
        dict(
            type='PanNukeDataset',
            data_root=converted[0],
            ann_file=ann_file,
            data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert isinstance(dataset, PanNukeDataset)
    names = read_name_list(osp.join(converted[0], ann_file))
    assert len(dataset) == len(names) == math.ceil(12 / 4)
    assert dataset.metainfo['classes'] == PANNUKE_CLASSES
    images, labels = source[1][1]
    for k, name in enumerate(names):
        item = dataset[k]
        index = int(name.split('_')[-1])
        sample = item['data_samples']
        assert sample.img_path.endswith(name + '.png')
        assert tuple(item['inputs'].shape) == (3, 256, 256)
        # LoadImageFromFile gives BGR, as for every mmseg dataset.
        np.testing.assert_array_equal(item['inputs'].permute(1, 2, 0).numpy(),
                                      images[index][..., ::-1])
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), labels[index])


def test_resume_skips_done_and_redoes_broken(source, tmp_path, monkeypatch):
    src, expected = source
    dst = str(tmp_path / 'out')
    first = convert_fold(src, dst, 2, chunk_size=3)
    assert (first.written, first.skipped) == (4, 0)
    outputs = [
        osp.join(dst, kind, 'fold2', f'fold2_{i:04d}.png') for kind in ('img_dir', 'ann_dir')
        for i in range(4)
    ]
    stamps = {path: os.stat(path).st_mtime_ns for path in outputs}

    with monkeypatch.context() as patch:  # a full resume must not decode any masks
        patch.setattr(pannuke, 'masks_to_labels', lambda masks: pytest.fail('redid work'))
        second = convert_fold(src, dst, 2, chunk_size=3)
    assert (second.written, second.skipped) == (0, 4)
    assert {path: os.stat(path).st_mtime_ns for path in outputs} == stamps
    np.testing.assert_array_equal(second.class_pixels, first.class_pixels)

    truncated, emptied, removed = outputs[1], outputs[6], outputs[3]
    data = open(truncated, 'rb').read()
    open(truncated, 'wb').write(data[:len(data) // 2])
    open(emptied, 'wb').close()
    os.remove(removed)
    open(removed + '.part', 'wb').write(b'left over by a killed run')
    third = convert_fold(src, dst, 2, chunk_size=3)
    assert (third.written, third.skipped) == (3, 1)
    images, labels = expected[2]
    for i in (1, 2, 3):
        np.testing.assert_array_equal(mmcv.imread(outputs[i], channel_order='rgb'), images[i])
        np.testing.assert_array_equal(cv2.imread(outputs[4 + i], cv2.IMREAD_UNCHANGED), labels[i])
    assert not osp.exists(removed + '.part')
    np.testing.assert_array_equal(third.class_pixels, first.class_pixels)


def test_partition_files_of_training_fold(converted):
    dst, _, parts = converted
    all_names = set(read_name_list(osp.join(dst, 'splits', 'fold1', 'all.txt')))
    previous = set()
    for split in ('1_30', '1_16', '1_8', '1_4'):
        labeled = read_name_list(osp.join(dst, 'splits', 'fold1', split, 'labeled.txt'))
        unlabeled = read_name_list(osp.join(dst, 'splits', 'fold1', split, 'unlabeled.txt'))
        assert (labeled, unlabeled) == parts[split]
        assert len(labeled) == math.ceil(12 * PARTITIONS[split])
        assert set(labeled) | set(unlabeled) == all_names and not set(labeled) & set(unlabeled)
        assert previous <= set(labeled)
        previous = set(labeled)
    assert not osp.exists(osp.join(dst, 'splits', 'fold2', '1_4'))


def check_partitions(names, tissues, parts):
    """Every property the partitions promise, for any names/tissues."""
    size = {t: tissues.count(t) for t in set(tissues)}
    tissue_of = dict(zip(names, tissues))
    previous = set()
    for split, fraction in sorted(PARTITIONS.items(), key=lambda item: item[1]):
        labeled, unlabeled = parts[split]
        assert len(labeled) == math.ceil(len(names) * fraction)
        assert sorted(labeled + unlabeled) == sorted(names) and not set(labeled) & set(unlabeled)
        assert previous <= set(labeled), split
        previous = set(labeled)
        for tissue, n in size.items():
            got = sum(tissue_of[name] == tissue for name in labeled)
            assert math.floor(n * fraction) <= got <= math.ceil(n * fraction), (split, tissue)
            if n >= 1 / fraction:
                assert got >= 1, (split, tissue)


def test_stratified_partitions_pannuke_sized():
    # 19 tissues with sizes spread like a PanNuke fold (a few hundred down to a handful).
    sizes = [573, 440, 230, 150, 120, 110, 90, 75, 70, 64, 60, 50, 45, 40, 33, 29, 16, 9, 3]
    tissues = [f'tissue{t:02d}' for t, n in enumerate(sizes) for _ in range(n)]
    names = [f'fold1/fold1_{i:04d}' for i in range(len(tissues))]
    parts = stratified_partitions(names, tissues, seed=0)
    check_partitions(names, tissues, parts)
    assert stratified_partitions(list(reversed(names)), list(reversed(tissues)), 0) == parts
    assert stratified_partitions(names, tissues, seed=1) != parts
    # N = 2207: ceil(N / 30), ceil(N / 16), ceil(N / 8), ceil(N / 4)
    assert [len(parts[s][0]) for s in ('1_30', '1_16', '1_8', '1_4')] == [74, 138, 276, 552]


def test_stratified_partitions_random_sizes():
    rng = random.Random(0)
    for trial in range(300):
        sizes = [rng.randint(1, rng.choice([3, 20, 80])) for _ in range(rng.randint(1, 19))]
        tissues = [f't{t}' for t, n in enumerate(sizes) for _ in range(n)]
        names = [f'fold1/fold1_{i:04d}' for i in range(len(tissues))]
        check_partitions(names, tissues, stratified_partitions(names, tissues, seed=trial))


def test_allocation_exhaustive_three_tissues():
    # Plain largest-remainder rounding per fraction breaks nesting here: with sizes 1, 1, 29
    # 'A' gets the ceiling at 1/30 and the floor (0) at 1/16.
    assert allocate_labeled_counts({'A': 1, 'B': 1, 'C': 29})['1_16']['A'] == 1
    order = sorted(PARTITIONS, key=PARTITIONS.get)
    for sizes in itertools.combinations_with_replacement(range(1, 31), 3):
        sizes = dict(zip('ABC', sizes))
        counts = allocate_labeled_counts(sizes)
        for split, fraction in PARTITIONS.items():
            assert sum(counts[split].values()) == math.ceil(sum(sizes.values()) * fraction)
            for tissue, n in sizes.items():
                assert math.floor(n * fraction) <= counts[split][tissue] <= math.ceil(n * fraction)
        for smaller, larger in zip(order, order[1:]):
            assert all(counts[smaller][t] <= counts[larger][t] for t in sizes), sizes


def test_allocation_small_tissues_and_errors():
    counts = allocate_labeled_counts({'big': 29, 'small': 1})
    assert counts['1_30'] == {'big': 0, 'small': 1} or counts['1_30'] == {'big': 1, 'small': 0}
    assert sum(counts['1_4'].values()) == math.ceil(30 / 4) and counts['1_4']['big'] >= 7
    with pytest.raises(ValueError, match='unique'):
        stratified_partitions(['a', 'a'], ['x', 'x'], seed=0)


def test_missing_fold_file_is_named(source, tmp_path):
    root = tmp_path / 'src'
    shutil.copytree(osp.join(source[0], 'Fold 3'), root / 'Fold 3')
    masks = pannuke.fold_file_paths(str(root), 3)['masks']
    os.remove(masks)
    with pytest.raises(FileNotFoundError, match=f'{masks}.*256 x 256 x 6'):
        open_fold(str(root), 3)
    with pytest.raises(FileNotFoundError, match='images.npy'):
        open_fold(str(root), 1)


@pytest.mark.parametrize('key,array,message', [
    ('images', np.zeros((2, 256, 256, 4)), r'images\.npy: shape \(2, 256, 256, 4\).*256 x 3'),
    ('images', np.zeros((2, 128, 128, 3)), r'images\.npy: shape \(2, 128, 128, 3\)'),
    ('images', np.full((2, 256, 256, 3), 'x'), r'images\.npy: .*dtype <U1'),
    ('masks', np.zeros((2, 256, 256, 5)), r'masks\.npy: shape \(2, 256, 256, 5\).*x 6'),
    ('types', np.array([['Breast'], ['Colon']]), r'types\.npy: shape \(2, 1\).*strings'),
    ('types', np.array([1.0, 2.0]), r'types\.npy: .*float64.*strings'),
    ('types', np.array(['Breast', 'Colon', 'Lung']), r'disagree.*masks\.npy: 2.*types\.npy: 3'),
])
def test_wrong_shapes_and_dtypes_are_named(tmp_path, key, array, message):
    root = str(tmp_path / 'src')
    paths = pannuke.fold_file_paths(root, 1)
    good = {
        'images': np.zeros((2, 256, 256, 3)),
        'masks': np.zeros((2, 256, 256, 6)),
        'types': np.array(['Breast', 'Colon'])
    }
    for name, value in {**good, key: array}.items():
        os.makedirs(osp.dirname(paths[name]), exist_ok=True)
        np.save(paths[name], value)
    with pytest.raises(ValueError, match=message):
        open_fold(root, 1)


SCRIPT = osp.join(REPO, 'tools', 'dataset_converters', 'pannuke.py')


def run_cli(monkeypatch, capsys, *args):
    """Run the converter script as ``__main__`` in this process; return (stdout, stderr)."""
    monkeypatch.setattr(sys, 'argv', [SCRIPT, *map(str, args)])
    runpy.run_path(SCRIPT, run_name='__main__')
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_cli_converts_prints_counts_and_matches_api(source, converted, tmp_path, monkeypatch,
                                                    capsys):
    dst = tmp_path / 'cli'
    out, err = run_cli(monkeypatch, capsys, source[0], dst, '--folds', 1, 2, 3, '--train-fold', 1,
                       '--seed', 0)
    for word in PANNUKE_CLASSES + ('Breast', 'Colon', 'Kidney', 'Lung', 'Liver', 'Skin'):
        assert word in out
    assert 'fold1: 12 images (12 written, 0 already done)' in out
    assert 'fold1: 12/12' in err
    # The fake fold is not the release the shipped lists were drawn from, and the tool says so.
    assert ('WARNING: your tissue types differ from the PanNuke release' in err
            and 'fold 1 has 12 images, the release has 2656' in err)
    # Tissue table: images per fold, then labeled images of fold1 per partition.
    assert out.split('\nBreast')[1].split()[:7] == ['5', '1', '2', '1', '1', '1', '1']
    assert '1_30 1/11' in out and '1_4 3/9' in out
    for split in PARTITIONS:
        for part in ('labeled', 'unlabeled'):
            rel = osp.join('splits', 'fold1', split, f'{part}.txt')
            assert read_name_list(osp.join(dst, rel)) == read_name_list(osp.join(converted[0], rel))

    # Rotation: partition fold 2 from the tree already converted; nothing is redone.
    out, _ = run_cli(monkeypatch, capsys, source[0], dst, '--folds', 2, '--train-fold', 2)
    assert 'fold2: 4 images (0 written, 4 already done)' in out
    assert len(read_name_list(osp.join(dst, 'splits', 'fold2', '1_4', 'labeled.txt'))) == 1


def test_cli_recognises_the_release_types(source, converted, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pannuke, 'packaged_tissue_types', lambda fold: FOLD_TISSUES[fold])
    out, err = run_cli(monkeypatch, capsys, source[0], tmp_path / 'cli', '--folds', 2,
                       '--train-fold', 2)
    assert 'these are the partitions shipped with mmcora' in out and 'WARNING' not in err


@pytest.mark.parametrize('fold,size', [(1, 2656), (2, 2523), (3, 2722)])
def test_shipped_partitions_redraw_from_release_types(fold, size):
    tissues = pannuke.packaged_tissue_types(fold)
    assert len(tissues) == size and len(set(tissues)) == 19
    names = [pannuke.sample_name(fold, i) for i in range(size)]
    assert pannuke.packaged_mismatch(fold, tissues) is None
    changed = list(tissues)
    changed[7] = 'Colon'
    assert pannuke.packaged_mismatch(
        fold, changed) == (f"fold {fold} image 7 is 'Colon', in the release {tissues[7]!r}")
    previous = set()
    for split, (labeled, unlabeled) in stratified_partitions(names, tissues, seed=0).items():
        shipped = {
            part: read_name_list(packaged_split_file('pannuke', f'fold{fold}/{split}', part))
            for part in ('labeled', 'unlabeled')
        }
        assert shipped == {'labeled': labeled, 'unlabeled': unlabeled}
        assert len(labeled) == math.ceil(size * PARTITIONS[split])
        assert sorted(labeled + unlabeled) == sorted(names) and previous <= set(labeled)
        previous = set(labeled)


def test_cli_reports_bad_input_before_converting(source, tmp_path, monkeypatch, capsys):
    with pytest.raises(
            SystemExit,
            match=r'error: PanNuke images file not found: .*nowhere.'
            r'Fold 1.images.fold1.images\.npy'):
        run_cli(monkeypatch, capsys, tmp_path / 'nowhere', tmp_path / 'out')
    src = tmp_path / 'two_folds'
    for fold in (1, 2):
        shutil.copytree(osp.join(source[0], f'Fold {fold}'), src / f'Fold {fold}')
    with pytest.raises(SystemExit, match='Fold 3.images.fold3.images.npy'):
        run_cli(monkeypatch, capsys, src, tmp_path / 'out')
    assert not (tmp_path / 'out' / 'img_dir').exists()  # fold 1 was not converted first
    with pytest.raises(SystemExit, match='--train-fold 3 is neither in --folds'):
        run_cli(monkeypatch, capsys, src, tmp_path / 'out', '--folds', 1, '--train-fold', 3)


def test_instruction_set_of_converted_fold(converted, tmp_path):
    from mmcora.instructions import build_instruction_set
    from mmcora.instructions.records import read_instruction_file
    out = str(tmp_path / 'fold1_1_4.jsonl')
    summary = build_instruction_set(
        converted[0], 'pannuke', 'train', 'splits/fold1/1_4/labeled.txt', out=out)
    _, records = read_instruction_file(out)
    labeled = read_name_list(osp.join(converted[0], 'splits/fold1/1_4/labeled.txt'))
    assert [r.image for r in records] == labeled and summary['images'] == 3
    # Every fake patch holds all five nucleus types (FIXED_NUCLEI); background is no target.
    semantic = [q.class_name for r in records for q in r.queries if q.type == 'semantic']
    assert sorted(set(semantic)) == sorted(CHANNEL_NAMES)
    conditional = [q for r in records for q in r.queries if q.type == 'conditional']
    assert conditional and all(q.relation not in ('front', 'behind') for q in conditional)
    # Labels stay in the records; the text names cells ("the dead cells", "the dead cell").
    for query in (q for r in records for q in r.queries if q.type != 'attribute'):
        assert query.class_name + ' cell' in query.text or (
            query.class_name == 'connective' and 'connective tissue cell' in query.text), \
            query.text
