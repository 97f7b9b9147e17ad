"""SemiReasoningDataset: per-draw class and K queries from pseudo-labels; bad input named."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmcora.datasets import SemiReasoningDataset, read_name_list
from mmcora.instructions.vocabulary import ANSWERS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPseudoLabel'),
    dict(type='SamplePseudoQueries', num_queries=7, min_area_ratio=0.01),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56),
    dict(type='PackReasoningInputs'),
]


def write_pseudo(root, out, names):
    """Pseudo-labels = the ground truth (void as road), confidence 0.5 left / 1 right."""
    for name in names:
        label = cv2.imread(
            osp.join(root, 'gtFine/train', name + '_gtFine_labelTrainIds.png'),
            cv2.IMREAD_UNCHANGED)
        label[label == 255] = 0
        conf = np.full(label.shape, 255, np.uint8)
        conf[:, :label.shape[1] // 2] = 128
        os.makedirs(osp.dirname(osp.join(out, name)), exist_ok=True)
        cv2.imwrite(osp.join(out, name + '_pseudo.png'), label)
        cv2.imwrite(osp.join(out, name + '_conf.png'), conf)


@pytest.fixture(scope='module')
def pseudo_dir(toy_city_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('pseudo'))
    write_pseudo(toy_city_root, out,
                 read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt')))
    return out


def build(root, pseudo, **kwargs):
    init_default_scope('mmseg')
    args = dict(
        ann_file='splits/1_30/unlabeled.txt', data_root=root, pseudo_dir=pseudo, pipeline=PIPELINE)
    args.update(kwargs)
    return SemiReasoningDataset(**args)


def test_draws_a_present_class_with_k_distinct_queries(toy_city_root, pseudo_dir):
    dataset = build(toy_city_root, pseudo_dir)
    assert len(dataset) == 29
    np.random.seed(0)
    seen = set()
    for index in range(6):
        item = dataset[index]
        sample = item['data_samples']
        (query, ), rest = sample.queries, sample.consistency_queries
        texts = [query['text']] + [q['text'] for q in rest]
        assert len(rest) == 6 and len(set(texts)) == 7
        assert {q['class_id'] for q in rest} == {query['class_id']}
        assert all(t in dataset.query_bank[query['class_name']] for t in texts)
        assert query['answer'] in ANSWERS and '[SEG]' in query['answer']
        label = cv2.imread(sample.pseudo_path, cv2.IMREAD_UNCHANGED)
        expected = label == query['class_id']
        assert expected.mean() >= 0.01
        assert np.array_equal(sample.gt_masks[0].numpy() == 1, expected)
        conf = sample.gt_confidence[0].numpy()
        assert conf.shape == label.shape and conf.min() == pytest.approx(128 / 255)
        assert sample.is_pseudo and item['inputs']['sam'].shape[-1] == 256
        seen.add(query['class_name'])
    assert len(seen) > 1  # the class is drawn, not fixed


def test_same_seed_repeats_the_draws(toy_city_root, pseudo_dir):
    dataset = build(toy_city_root, pseudo_dir)

    def draws():
        np.random.seed(3)
        return [dataset[i]['data_samples'].queries[0]['text'] for i in range(4)]

    assert draws() == draws()


def test_without_confidence_maps(toy_city_root, pseudo_dir):
    sample = build(toy_city_root, pseudo_dir, conf_suffix=None)[0]['data_samples']
    assert 'gt_confidence' not in sample


def test_missing_pseudo_label_names_line_and_file(toy_city_root, pseudo_dir, tmp_path):
    names = read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt'))
    write_pseudo(toy_city_root, str(tmp_path), names[:3])
    with pytest.raises(
            FileNotFoundError,
            match=r'unlabeled.txt line 4: pseudo-label missing: ' + '.*' + names[3]):
        build(toy_city_root, str(tmp_path))
    with pytest.raises(FileNotFoundError, match='export_pseudo_labels'):
        build(toy_city_root, str(tmp_path / 'nowhere'))


def test_pseudo_label_of_another_size_is_refused(toy_city_root, tmp_path):
    names = read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt'))
    write_pseudo(toy_city_root, str(tmp_path), names)
    path = osp.join(str(tmp_path), names[1] + '_pseudo.png')
    cv2.imwrite(path, np.zeros((64, 128), np.uint8))
    with pytest.raises(ValueError, match=r'line 2: pseudo-label .* is \(64, 128\), the image'):
        build(toy_city_root, str(tmp_path))


def test_class_absent_from_the_query_bank_is_refused(toy_city_root, pseudo_dir, tmp_path):
    bank = tmp_path / 'bank.json'
    bank.write_text(json.dumps({'road': [f'road query {i}' for i in range(7)]}))
    with pytest.raises(ValueError, match=r"class 'sidewalk' has no queries in .*bank.json"):
        build(toy_city_root, pseudo_dir, query_bank=dict(dataset=None, extra_file=str(bank)))
    only_road = build(
        toy_city_root,
        pseudo_dir,
        sample_classes=['road'],
        query_bank=dict(dataset=None, extra_file=str(bank)))
    assert only_road[0]['data_samples'].queries[0]['text'].startswith('road query')
    with pytest.raises(ValueError, match='at least 9'):
        build(
            toy_city_root,
            pseudo_dir,
            num_queries=9,
            pipeline=[dict(type='SamplePseudoQueries', num_queries=9)])
    with pytest.raises(ValueError, match='SamplePseudoQueries draws 5 queries, the dataset'):
        build(toy_city_root, pseudo_dir, pipeline=[dict(type='SamplePseudoQueries', num_queries=5)])


def test_label_outside_the_classes_fails_at_the_draw_naming_the_file(toy_city_root, tmp_path):
    names = read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt'))
    write_pseudo(toy_city_root, str(tmp_path), names)
    path = osp.join(str(tmp_path), names[0] + '_pseudo.png')
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    label[0, 0] = 40
    cv2.imwrite(path, label)
    with pytest.raises(ValueError, match=r'_pseudo.png has label 40, outside the 19 classes'):
        build(toy_city_root, str(tmp_path))[0]


def test_corrupt_pseudo_mask_swaps_the_target_at_the_given_rate():
    """The robustness probe replaces ~ratio of the targets by another present class's mask
    (the query keeps its class), never the drawn class itself; one class alone is kept."""
    from mmseg.registry import TRANSFORMS
    label = np.zeros((10, 10), np.uint8)
    label[:, 4:] = 13
    label[0, 0] = 255
    corrupt = TRANSFORMS.build(dict(type='CorruptPseudoMask', ratio=0.3))
    np.random.seed(0)
    swapped = 0
    for _ in range(400):
        drawn = int(np.random.choice([0, 13]))
        mask = (label == drawn).astype(np.uint8)
        mask[label == 255] = 255
        results = corrupt(
            dict(
                pseudo_label=label,
                queries=[dict(class_id=drawn)],
                sample_class_ids=(0, 11, 13),
                gt_masks=mask[None]))
        if results['mask_corrupted']:
            swapped += 1
            assert (results['gt_masks'][0][label != 255] == (label != drawn)[label != 255]).all()
            assert results['gt_masks'][0, 0, 0] == 255  # void stays void
        else:
            assert results['gt_masks'] is not None and (results['gt_masks'][0] == mask).all()
    assert 0.25 < swapped / 400 < 0.35
    alone = corrupt.__class__(ratio=1.0)(
        dict(
            pseudo_label=np.full((4, 4), 13, np.uint8),
            queries=[dict(class_id=13)],
            sample_class_ids=(0, 13),
            gt_masks=np.ones((1, 4, 4), np.uint8)))
    assert not alone['mask_corrupted']
    with pytest.raises(ValueError, match=r'ratio must be in \[0, 1\]'):
        corrupt.__class__(ratio=1.5)
