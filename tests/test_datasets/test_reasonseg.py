"""ReasonSeg: LabelMe-style JSON files parsed into LISA's masks and prompts, through the
reasoning pipeline and the metric, and the errors that name the bad file."""
import json
import logging
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmcora  # noqa: F401
from mmcora.datasets.reasonseg_benchmark import ReasonSegDataset
from mmcora.datasets.transforms import LoadReasoningAnnotations
from mmcora.evaluation import ReasoningIoUMetric
from mmcora.instructions import decode_rle, encode_rle
from ..conftest import REPO

H, W = 40, 60
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56),
    dict(type='PackReasoningInputs')
]


def _rect(x0, y0, x1, y1):
    """A LabelMe polygon for the closed pixel rectangle [x0, x1] x [y0, y1]."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _shape(label, points):
    return dict(label=label, points=points, group_id=None, shape_type='polygon', flags={})


def _write(directory, name, shapes, texts, is_sentence, suffix='.jpg', size_in_json=True):
    """One ReasonSeg pair: ``name.json`` in LabelMe's format and a random image beside it."""
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(directory / (name + suffix)), image)
    anno = dict(
        version='4.5.6',
        flags={},
        shapes=shapes,
        imagePath=name + suffix,
        imageData=None,
        imageHeight=H,
        imageWidth=W,
        text=texts,
        is_sentence=is_sentence)
    if not size_in_json:
        del anno['imageHeight'], anno['imageWidth']
    (directory / (name + '.json')).write_text(json.dumps(anno))


# Expected label maps, written by hand: polylines + fillPoly of an integer rectangle cover its
# corners inclusively. In a_phrase the ignore square is listed first but is smaller than the
# big target, so it is drawn after it and wins the overlap; in b_sentence the small target is
# drawn over the large ignore region.
EXPECTED_A = np.zeros((H, W), np.uint8)
EXPECTED_A[5:31, 5:31] = 1  # big target
EXPECTED_A[10:21, 40:51] = 1  # small target
EXPECTED_A[20:36, 20:36] = 255  # ignore, over the big target's corner
EXPECTED_B = np.zeros((H, W), np.uint8)
EXPECTED_B[0:21, 0:21] = 255  # "Ignore region"
EXPECTED_B[5:11, 5:11] = 1  # target inside it (float corners truncate to ints)


@pytest.fixture
def root(tmp_path):
    """A ``val`` split: a phrase (.jpg), a sentence (.png, no size in the JSON), and a file
    with only ignore and flag shapes."""
    val = tmp_path / 'reasonseg' / 'val'
    _write(
        val,
        'a_phrase',
        [
            _shape('ignore', _rect(20, 20, 35, 35)),
            _shape('target', _rect(5, 5, 30, 30)),
            _shape('flag', _rect(0, 0, W - 1, H - 1)),  # would cover everything if drawn
            _shape('target', _rect(40, 10, 50, 20)),
        ],
        ['the red cup', 'the cup that is red'],
        False)
    _write(
        val,
        'b_sentence', [
            _shape('target', [[5.9, 5.2], [10.7, 5.0], [10.99, 10.5], [5.0, 10.0]]),
            _shape('Ignore region', _rect(0, 0, 20, 20)),
        ], ['Something you drink coffee from.', 'What holds the coffee?', 'The mug.'],
        True,
        suffix='.png',
        size_in_json=False)
    _write(val, 'c_no_target',
           [_shape('ignore', _rect(0, 0, 9, 9)),
            _shape('flag', _rect(1, 1, 5, 5))], ['nothing'], False)
    return str(tmp_path / 'reasonseg')


def _dataset(root, **kwargs):
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(type='ReasonSegDataset', data_root=root, split='val', pipeline=PIPELINE, **kwargs))


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_items_queries_and_skipped_file(root):
    # mmengine's logger need not propagate to the root logger (caplog), so listen on it
    logger, records = MMLogger.get_current_instance(), _Records()
    logger.addHandler(records)
    try:
        dataset = _dataset(root)
    finally:
        logger.removeHandler(records)
    assert records.messages == [
        f'{osp.join(root, "val", "c_no_target.json")}: no target '
        'polygon, skipped'
    ]
    assert dataset.metainfo['classes'] == ('target', )
    assert len(dataset) == 2
    a, b = dataset.get_data_info(0), dataset.get_data_info(1)
    assert a['img_path'] == osp.join(root, 'val', 'a_phrase.jpg') and a['seg_map_path'] is None
    assert b['img_path'] == osp.join(root, 'val', 'b_sentence.png')
    assert (b['height'], b['width']) == (H, W)  # read from the image: no size in the JSON
    [qa], [qb] = a['queries'], b['queries']
    assert qa['text'] == 'What is the red cup in this image? Please output segmentation mask.'
    assert qb['text'] == 'Something you drink coffee from. Please output segmentation mask.'
    assert (qa['type'], qb['type']) == ('reasonseg_phrase', 'reasonseg_sentence')
    for q in (qa, qb):
        assert (q['answer'], q['class_id'], q['class_name'], q['source']) == ('[SEG].', -1,
                                                                              'target', 'reasonseg')
        assert q['relation'] is None and q['anchor'] is None
    assert qa['target']['bbox'] == [5, 5, 51, 31]
    assert qb['target']['bbox'] == [5, 5, 11, 11]
    assert np.array_equal(decode_rle(qa['target']['rle']), EXPECTED_A == 1)
    assert np.array_equal(decode_rle(a['ignore_rle']), EXPECTED_A == 255)


def test_pipeline_masks_follow_lisa(root):
    dataset = _dataset(root)
    for index, expected in enumerate((EXPECTED_A, EXPECTED_B)):
        item = dataset[index]
        sample = item['data_samples']
        assert sample.gt_masks.dtype == torch.uint8
        assert np.array_equal(sample.gt_masks.numpy(), expected[None])
        assert item['inputs']['sam'].shape == (3, 171, 256)
        assert item['inputs']['clip'].shape == (3, 56, 56)
        assert sample.seg_map_path is None and sample.queries[0]['class_name'] == 'target'
    a = dataset[0]['data_samples'].gt_masks[0]
    # hand-picked pixels: targets, the ignore overlap, the skipped flag and the background
    assert (a[10, 10], a[15, 45], a[25, 25], a[2, 2], a[38, 58]) == (1, 1, 255, 0, 0)


def test_all_texts_makes_every_text_a_query_of_one_item(root):
    dataset = _dataset(root, all_texts=True)
    assert len(dataset) == 2
    texts = [q['text'] for q in dataset.get_data_info(1)['queries']]
    assert texts == [
        'Something you drink coffee from. Please output segmentation mask.',
        'What holds the coffee? Please output segmentation mask.',
        'The mug. Please output segmentation mask.'
    ]
    sample = dataset[1]['data_samples']
    assert sample.num_queries == 3
    assert np.array_equal(sample.gt_masks.numpy(), np.stack([EXPECTED_B] * 3))
    assert dataset[0]['data_samples'].gt_masks.shape == (2, H, W)


def _evaluate(dataset, predict):
    metric = ReasoningIoUMetric(per_class=True)
    metric.dataset_meta = dataset.metainfo
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        metric.process(None, [
            dict(
                pred_masks=predict(sample.gt_masks),
                gt_masks=sample.gt_masks,
                queries=sample.queries,
                img_path=sample.img_path)
        ])
    return metric.compute_metrics(metric.results)


def test_metric_scores_a_perfect_prediction_100(root):
    dataset = _dataset(root, all_texts=True)
    perfect = _evaluate(dataset, lambda gt: gt == 1)
    assert (perfect['cIoU'], perfect['gIoU'], perfect['num_masks']) == (100.0, 100.0, 5)
    assert perfect['cIoU/reasonseg_phrase'] == perfect['cIoU/reasonseg_sentence'] == 100.0
    assert perfect['cIoU/class/target'] == 100.0
    # predictions inside the ignore region are neither hits nor false positives
    assert _evaluate(dataset, lambda gt: gt != 0)['gIoU'] == 100.0
    # everything predicted: I = target pixels, U = all pixels outside the ignore region
    everything = _evaluate(dataset, lambda gt: torch.ones_like(gt, dtype=torch.bool))
    ia, ua = (EXPECTED_A == 1).sum(), (EXPECTED_A != 255).sum()
    ib, ub = (EXPECTED_B == 1).sum(), (EXPECTED_B != 255).sum()
    assert everything['cIoU'] == round(100 * (2 * ia + 3 * ib) / (2 * ua + 3 * ub), 2)
    assert everything['gIoU'] == round(100 * (2 * ia / ua + 3 * ib / ub) / 5, 2)


def test_eval_config_builds_the_7b_val_pipeline(root):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'reasonseg_eval.py'))
    assert cfg.custom_imports['imports'] == ['mmcora']
    assert (cfg.val_dataloader.dataset.split, cfg.test_dataloader.dataset.split) == ('val', 'test')
    assert cfg.val_evaluator['type'] == 'ReasoningIoUMetric'
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.data_root = root
    init_default_scope('mmseg')
    dataset = DATASETS.build(dataset_cfg)
    assert isinstance(dataset, ReasonSegDataset) and len(dataset) == 2
    item = dataset[0]
    assert item['inputs']['sam'].shape == (3, 683, 1024)  # 40x60 -> longest side 1024
    assert item['inputs']['clip'].shape == (3, 336, 336)
    assert [q['text'] for q in item['data_samples'].queries
            ] == ['What is the red cup in this image? Please output segmentation mask.']


def _bad_split(tmp_path, name, **changes):
    """A ``val`` split with one good file and one file broken by ``changes``."""
    val = tmp_path / 'bad' / 'val'
    _write(val, 'good', [_shape('target', _rect(1, 1, 5, 5))], ['a cup'], False)
    _write(val, name, [_shape('target', _rect(1, 1, 5, 5))], ['a cup'], False)
    path = val / (name + '.json')
    anno = json.loads(path.read_text())
    anno.update(changes)
    path.write_text(json.dumps(anno))
    return str(tmp_path / 'bad'), str(path)


def test_unreadable_json_names_the_file(tmp_path):
    root, path = _bad_split(tmp_path, 'broken')
    with open(path, 'a') as f:
        f.write('}{')
    with pytest.raises(ValueError, match=rf'{re.escape(path)}: unreadable ReasonSeg JSON'):
        _dataset(root)


def test_missing_image_names_the_json_file(tmp_path):
    root, path = _bad_split(tmp_path, 'lonely')
    (tmp_path / 'bad' / 'val' / 'lonely.jpg').unlink()
    with pytest.raises(FileNotFoundError, match=rf'{re.escape(path)}: no image lonely'):
        _dataset(root)


def test_short_polygon_names_the_file_and_shape(tmp_path):
    root, path = _bad_split(
        tmp_path,
        'line',
        shapes=[_shape('target', _rect(1, 1, 5, 5)),
                _shape('target', [[0, 0], [5, 5]])])
    with pytest.raises(
            ValueError,
            match=rf"{re.escape(path)}: shape 1 \('target'\): a "
            r'polygon needs at least 3 \(x, y\) points, got array of shape \(2, 2\)'):
        _dataset(root)


def test_missing_text_names_the_file(tmp_path):
    root, path = _bad_split(tmp_path, 'mute', text=[])
    with pytest.raises(ValueError, match=rf'{re.escape(path)}: "text" must be a non-empty list'):
        _dataset(root)


def test_cp1252_file_is_read_like_lisa(tmp_path):
    root, path = _bad_split(tmp_path, 'latin')
    anno = json.loads(open(path).read())
    anno['text'] = ['the caf\u00e9 sign']
    with open(path, 'w', encoding='cp1252') as f:
        json.dump(anno, f, ensure_ascii=False)  # a raw 0xE9 byte: not UTF-8
    dataset = _dataset(root)
    assert dataset.get_data_info(1)['queries'][0]['text'].startswith('What is the caf\u00e9 sign')


def test_annotations_without_label_map():
    shape = (4, 5)
    ignore = np.zeros(shape, bool)
    ignore[0] = True
    target = np.zeros(shape, bool)
    target[2:, 1:3] = True
    query = dict(text='q', class_id=-1, target=dict(rle=encode_rle(target)), anchor=None)
    results = dict(
        img=np.zeros((*shape, 3), np.uint8),
        img_path='x.jpg',
        seg_map_path=None,
        queries=[query],
        ignore_rle=encode_rle(ignore))
    masks = LoadReasoningAnnotations()(dict(results))['gt_masks']
    expected = target.astype(np.uint8)
    expected[0] = 255
    assert np.array_equal(masks[0], expected)
    del results['ignore_rle']  # no ignore region: nothing is void
    assert np.array_equal(LoadReasoningAnnotations()(dict(results))['gt_masks'][0], target)
    # a class query needs a label map
    results['queries'] = [dict(query, target=None, class_id=3)]
    with pytest.raises(
            ValueError,
            match=r"x.jpg query 0 \('q'\): no target mask and no "
            'label map to take class 3 from'):
        LoadReasoningAnnotations()(results)
