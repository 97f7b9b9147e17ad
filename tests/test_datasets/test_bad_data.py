"""Bad data files: label maps of the wrong content, damaged files, a query bank with unknown
classes. Each is refused with an error naming the file (and its list line, or the class)."""
import json
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

import mmcora  # noqa: F401
from mmcora.engine.hooks import check_files, describe_missing, file_damage, missing_files
from mmcora.instructions import QueryBank
from ..test_engine.test_data_check import _runner

SHAPE = (8, 12)


def _label(kind: str) -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    if kind == 'colour':
        return np.stack([label] * 3, axis=-1)
    if kind == 'label ids':  # Cityscapes' labelIds where labelTrainIds belong
        label[:, :4], label[:, 4:8] = 33, 19
    elif kind == 'train ids':
        label[:, :4], label[:, 4:8], label[:, 8:] = 18, 255, 13
    return label


def _annotate(tmp_path, kind: str, **extra) -> dict:
    path = str(tmp_path / 'aachen_000000_000019_gtFine_labelTrainIds.png')
    cv2.imwrite(path, _label(kind))
    results = dict(
        img=np.zeros((*SHAPE, 3), np.uint8),
        img_path='aachen_000000_000019_leftImg8bit.png',
        seg_map_path=path,
        queries=[dict(text='Segment the car.', class_id=13, target=None, anchor=None)],
        **extra)
    return TRANSFORMS.build(dict(type='LoadReasoningAnnotations'))(results)


@pytest.mark.parametrize('kind, message', [
    ('colour', r'labelTrainIds\.png: a label map must have one channel, got shape \(8, 12, 3\)'),
    ('label ids', r'labelTrainIds\.png: ids \[19, 33\] are not classes of this dataset '
     r'\(0\.\.18\) nor the ignore index 255'),
])
def test_label_map_of_wrong_content_is_refused(tmp_path, kind, message):
    with pytest.raises(ValueError, match=rf'^{re.escape(str(tmp_path))}/aachen_.*{message}'):
        _annotate(tmp_path, kind, num_classes=19)


def test_label_map_of_train_ids_and_ignore_passes(tmp_path):
    masks = _annotate(tmp_path, 'train ids', num_classes=19)['gt_masks']
    assert masks.shape == (1, *SHAPE) and (masks[0, :, 8:] == 1).all()
    assert (masks[0, :, 4:8] == 255).all() and (masks[0, :, :4] == 0).all()
    # Without the dataset's classes (a hand-made item) the ids are not judged.
    assert _annotate(tmp_path, 'label ids')['gt_masks'].sum() == 0


@pytest.fixture
def toy_copy(toy_city_root, tmp_path):
    root = str(tmp_path / 'toy_city')
    shutil.copytree(toy_city_root, root)
    return root


def _reasoning(root):
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(
            type='ReasoningSegDataset',
            data_root=root,
            ann_file='instructions/1_4.jsonl',
            build_instructions=dict(
                dataset='cityscapes', split='train', ann_file='splits/1_4/labeled.txt'),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadReasoningAnnotations')]))


def test_reasoning_dataset_refuses_label_ids_naming_the_map(toy_copy):
    dataset = _reasoning(toy_copy)
    assert dataset.get_data_info(0)['num_classes'] == 19
    assert dataset[1]['gt_masks'].shape[0] > 0  # the toy city's own maps pass
    path = dataset.get_data_info(1)['seg_map_path']
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    label[0, 0] = 26  # car's labelId
    cv2.imwrite(path, label)
    with pytest.raises(ValueError, match=rf'^{re.escape(path)}: ids \[26\] are not classes'):
        dataset[1]


@pytest.mark.parametrize(
    'query_types, message', [
        (('semantic', 'atribute'), r"query_types \['atribute'\] are not instruction types; choose "
         r"from \['semantic', 'attribute', 'conditional'\]"),
        ('conditionals', r"query_types \['conditionals'\] are not instruction types"),
    ],
    ids=['misspelt type', 'a string of an unknown type'])
def test_unknown_query_types_are_refused(toy_copy, query_types, message):
    # before: the misspelt type's queries were silently dropped from the stage's data
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match=message):
        DATASETS.build(
            dict(
                type='ReasoningSegDataset',
                data_root=toy_copy,
                ann_file='instructions/1_4.jsonl',
                query_types=query_types,
                pipeline=[]))


def _png(path, size=(64, 64)):
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (*size, 3), np.uint8))
    return str(path)


def _cut(path, keep=0.5):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:int(len(data) * keep)])
    return path


def _trailing(path, size=4096):
    with open(path, 'ab') as f:
        f.write(bytes(size))
    return path


@pytest.mark.parametrize(
    'make, why',
    [
        (lambda d: _png(d / 'a.png'), None),
        (lambda d: _cut(_png(d / 'a.png')),
         r'PNG without its IEND chunk at the end \(truncated\?\)'),
        (lambda d: _cut(_png(d / 'a.png', (256, 256)), 0.99), r'PNG without its IEND chunk'),
        (lambda d: _png(d / 'a.jpg', (256, 256)), None),
        (lambda d: _cut(_png(d / 'a.jpg', (256, 256))), r'JPEG without its end-of-image marker'),
        (lambda d: _trailing(_png(d / 'a.jpg', (256, 256))), None),  # e.g. an MPF second picture
        (lambda d: _cut(_png(d / 'a.png'), 0), r'empty file'),
        (lambda d: np.save(d / 'a.npy', np.zeros(100)) or str(d / 'a.npy'), None),
    ])
def test_file_damage(tmp_path, make, why):
    found = file_damage(make(tmp_path))
    if why is None:
        assert found is None
    else:
        assert found is not None and re.fullmatch(why + '.*', found), found


def _train_file(root, split_list, directory, suffix, line):
    name = open(osp.join(root, split_list)).read().split()[line - 1]
    return osp.join(root, directory, name + suffix)


def test_truncated_label_map_stops_training_naming_the_line(toy_copy, toy_city_spec, tmp_path):
    path = _cut(
        _train_file(toy_copy, 'splits/1_30/labeled.txt', 'gtFine/train',
                    '_gtFine_labelTrainIds.png', 1))
    runner = _runner(toy_copy, toy_city_spec, tmp_path / 'work')
    with pytest.raises(
            ValueError,
            match=rf'^data check before training: 1 files listed by .*splits/1_30/labeled\.txt '
            rf'are damaged; first: .*splits/1_30/labeled\.txt line 1 -> {re.escape(path)}: PNG '
            r'without its IEND chunk'):
        runner.train()
    assert runner.iter == 0


def test_test_run_checks_the_test_files_before_evaluating(toy_copy, toy_city_spec, tmp_path):
    path = _cut(_train_file(toy_copy, 'splits/val.txt', 'leftImg8bit/val', '_leftImg8bit.png', 3))
    runner = _runner(toy_copy, toy_city_spec, tmp_path / 'work')
    evaluated = []
    runner.test_loop.evaluator.process = lambda *a, **k: evaluated.append(1)
    with pytest.raises(
            ValueError,
            match=rf'^data check before testing: .*splits/val\.txt line 3 -> '
            rf'{re.escape(path)}: PNG without its IEND chunk'):
        runner.test()
    assert not evaluated
    os.remove(path)
    with pytest.raises(
            FileNotFoundError,
            match=r'^data check before testing: 1 files listed by '
            rf'.*splits/val\.txt are missing; first: .*line 3 -> {re.escape(path)}'):
        runner.test()


def test_reasoning_samples_are_not_called_lines(toy_copy):
    """An instruction file has a header line and may skip records: the hook names the sample."""
    dataset = _reasoning(toy_copy)
    gone = dataset.get_data_info(2)['seg_map_path']
    _cut(dataset.get_data_info(1)['img_path'])
    os.remove(gone)
    missing, damaged = check_files(dataset)
    assert missing == [(2, gone)] and missing_files(dataset) == missing
    assert [(i, why[:3]) for i, _, why in damaged] == [(1, 'PNG')]
    assert re.search(r'instructions/1_4\.jsonl sample 2 -> ', describe_missing(dataset, missing))


@pytest.mark.parametrize('dataset, bank, message', [
    ('cityscapes', {
        'persn': ['Find the people.']
    }, r"bank\.json: not classes of this data set: 'persn' \(did you mean 'person'\?\); its "
     r"classes are 'road', "),
    ('cityscapes', {
        'car': ['Find the cars.'],
        'scooter': ['Find the scooters.']
    }, r"bank\.json: not classes of this data set: 'scooter'; its classes"),
    ('pannuke', {
        'neoplastc': ['Find the tumour cells.']
    }, r"bank\.json: not classes of this data set: 'neoplastc' \(did you mean 'neoplastic'\?\)"),
])
def test_query_bank_with_unknown_classes_is_refused(tmp_path, dataset, bank, message):
    path = tmp_path / 'bank.json'
    path.write_text(json.dumps(bank))
    with pytest.raises(ValueError, match=rf'^{re.escape(str(tmp_path))}/{message}'):
        QueryBank(dataset, str(path), min_queries=1)


def test_query_bank_classes_of_the_data_set_pass(tmp_path):
    path = tmp_path / 'bank.json'
    path.write_text(json.dumps({'background': [f'Find the stroma {i}.' for i in range(7)]}))
    assert len(QueryBank('pannuke', str(path)).queries('background')) == 7  # not in the built-in
    path.write_text(json.dumps({'persn': ['Find the people.']}))
    assert QueryBank(None, str(path), min_queries=1).classes == ['persn']  # the file's classes
    with pytest.raises(ValueError, match=r"'persn' \(did you mean 'person'\?\)"):
        QueryBank(None, str(path), min_queries=1, classes=['person', 'car'])


def test_semi_reasoning_bank_is_checked_against_the_dataset_classes(toy_city_root, tmp_path):
    """Without a built-in bank the dataset's classes still bind the file."""
    path = tmp_path / 'bank.json'
    path.write_text(json.dumps({'persn': [f'people {i}' for i in range(7)]}))
    init_default_scope('mmseg')
    with pytest.raises(
            ValueError,
            match=r"bank\.json: not classes of this data set: 'persn' "
            r"\(did you mean 'person'\?\)"):
        DATASETS.build(
            dict(
                type='SemiReasoningDataset',
                ann_file='splits/1_30/unlabeled.txt',
                data_root=toy_city_root,
                pseudo_dir='pseudo/none',
                query_bank=dict(dataset=None, extra_file=str(path)),
                pipeline=[]))
