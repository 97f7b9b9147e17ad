"""Reasoning data path: dataset, transforms, preprocessor, and the errors they give."""
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmcora  # noqa: F401
from mmcora.instructions import decode_rle
from mmcora.models import ReasoningDataPreProcessor

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56),
    dict(type='PackReasoningInputs')
]


def _dataset(root, **kwargs):
    init_default_scope('mmseg')
    cfg = dict(
        type='ReasoningSegDataset',
        data_root=root,
        ann_file='instructions/1_4.jsonl',
        build_instructions=dict(
            dataset='cityscapes', split='train', ann_file='splits/1_4/labeled.txt'),
        pipeline=PIPELINE)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


@pytest.fixture(scope='module')
def dataset(toy_city_root):
    return _dataset(toy_city_root)


def test_targets_follow_the_queries(dataset, toy_city_root):
    item = dataset[0]
    sample = item['data_samples']
    label = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
    assert sample.gt_masks.shape == (sample.num_queries, *label.shape)
    info = dataset.get_data_info(0)
    for query, mask in zip(info['queries'], sample.gt_masks.numpy()):
        if query['target'] is None:
            expected = (label == query['class_id']).astype(np.uint8)
        else:
            expected = decode_rle(query['target']['rle']).astype(np.uint8)
        expected[(label == 255) & (expected == 0)] = 255
        assert np.array_equal(mask, expected)
    conditional = [i for i, q in enumerate(info['queries']) if q['type'] == 'conditional']
    assert len(sample.anchor_index) == len(conditional) > 0
    assert sample.anchor_index.tolist() == conditional
    assert sample.anchor_crops.shape == (len(conditional), 3, 56, 56)
    x0, y0, x1, y1 = info['queries'][conditional[0]]['anchor']['bbox']
    h, w = label.shape
    assert sample.anchor_boxes[0].tolist() == pytest.approx([x0 / w, y0 / h, x1 / w, y1 / h])
    # yapf: disable  (yapf breaks the shape tuple (3, 56, 56) in two)
    assert item['inputs']['sam'].shape == (3, 128, 256) and item['inputs']['clip'].shape == (
        3, 56, 56)
    # yapf: enable


def test_query_types_and_sampling(toy_city_root):
    only = _dataset(toy_city_root, query_types=['conditional'])
    assert all(q['type'] == 'conditional' for d in only.data_list for q in d['queries'])
    sampled = _dataset(
        toy_city_root,
        query_types=['semantic'],
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='SampleQueries', num_queries=2)] + PIPELINE[1:])
    sample = sampled[0]['data_samples']
    assert sample.num_queries == 2 and {q['type'] for q in sample.queries} == {'semantic'}


def test_preprocessor_normalises_and_pads(dataset):
    pre = ReasoningDataPreProcessor(sam_size=256)
    item = dataset[0]
    data = pre(pseudo_collate([item, dataset[1]]), False)
    sam, clip = data['inputs']['sam'], data['inputs']['clip']
    assert sam.shape == (2, 3, 256, 256) and clip.shape == (2, 3, 56, 56)
    raw = item['inputs']['sam'].float().flip(0)  # BGR -> RGB
    expected = (raw - pre.sam_mean) / pre.sam_std
    torch.testing.assert_close(sam[0, :, :128], expected)
    assert (sam[0, :, 128:] == 0).all()  # bottom padding
    assert clip.abs().max() < 3


def test_missing_files_fail_before_training(toy_city_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_city_root, root)
    _dataset(root)  # builds the instruction file
    name = open(osp.join(root, 'splits', '1_4', 'labeled.txt')).readline().strip()
    gone = osp.join(root, 'leftImg8bit', 'train', name + '_leftImg8bit.png')
    shutil.move(gone, gone + '.bak')
    with pytest.raises(
            FileNotFoundError,
            match=r'1 files named by .*1_4.jsonl are missing, '
            rf'first: .*{osp.basename(gone)}'):
        _dataset(root)


def test_bad_samples_name_the_image(toy_city_root, tmp_path):
    root = str(tmp_path / 'toy')
    shutil.copytree(toy_city_root, root)
    dataset = _dataset(root)
    info = dataset.get_data_info(0)
    # an unreadable image
    with open(info['img_path'], 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(Exception, match=osp.basename(info['img_path'])):
        dataset[0]
    # a label map whose size differs from its image
    info = dataset.get_data_info(1)
    cv2.imwrite(info['seg_map_path'], np.zeros((64, 64), np.uint8))
    with pytest.raises(
            ValueError,
            match=rf'{osp.basename(info["img_path"])}: label map .* is '
            r'\(64, 64\), the image is \(128, 256\)'):
        dataset[1]


def test_query_mask_of_another_size_names_image_and_query(dataset):
    from mmcora.datasets.transforms import LoadReasoningAnnotations
    from mmcora.instructions import encode_rle
    info = dataset.get_data_info(0)
    query = dict(
        info['queries'][0],
        target=dict(rle=encode_rle(np.ones((10, 20), bool))),
        text='Segment the odd one.')
    results = dict(
        img=np.zeros((128, 256, 3), np.uint8),
        img_path=info['img_path'],
        seg_map_path=info['seg_map_path'],
        queries=[query])
    with pytest.raises(
            ValueError,
            match=r"query 0 \('Segment the odd one.'\): mask size "
            r'\(10, 20\) differs from the image \(128, 256\)'):
        LoadReasoningAnnotations()(results)


def test_sample_queries_rewords_each_draw():
    from mmcora.datasets.transforms import SampleQueries
    from mmcora.instructions.vocabulary import ANCHOR_PLACEHOLDER, ANSWERS
    queries = [
        dict(
            text='Segment the car.',
            answer='[SEG].',
            type='semantic',
            class_name='car',
            source='builtin',
            relation=None,
            anchor=None),
        dict(
            text='Can you segment the pedestrians who walk?',
            answer='[SEG].',
            type='attribute',
            class_name='person',
            source='builtin',
            relation=None,
            anchor=None),
        dict(
            text='Segment the car left of <anchor>.',
            answer='[SEG].',
            type='conditional',
            class_name='car',
            source='builtin',
            relation='left',
            anchor=dict(class_name='person')),
        dict(
            text='The red car by the tree, please.',
            answer='Sure, [SEG].',
            type='attribute',
            class_name='car',
            source='gpt-4o',
            relation=None,
            anchor=None),
    ]
    np.random.seed(0)
    draws = [
        SampleQueries(num_queries=4, reword=True)(dict(queries=queries))['queries']
        for _ in range(12)
    ]
    texts = [{d[i]['text'] for d in draws} for i in range(4)]
    assert len(texts[0]) > 2 and all('car' in t for t in texts[0])
    assert len(texts[1]) > 2 and all('pedestrians who walk or stand' in t for t in texts[1])
    assert len(texts[2]) > 2 and all(
        'to the left of the ' in t and 'person ' + ANCHOR_PLACEHOLDER in t for t in texts[2])
    assert texts[3] == {'The red car by the tree, please.'}  # an LLM's wording is kept
    assert {d[0]['answer']
            for d in draws} <= set(ANSWERS) and len({d[0]['answer']
                                                     for d in draws}) > 2
    kept = SampleQueries(num_queries=4)(dict(queries=queries))['queries']
    assert [q['text'] for q in kept] == [q['text'] for q in queries]
