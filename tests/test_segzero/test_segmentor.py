"""Seg-Zero's segmenters, its data path and ``predict``: masks from the reasoner's box and
points, an empty mask for an unreadable reply, box and point accuracy in the metric."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, METRICS, MODELS, TRANSFORMS

from mmcora.models.segzero import Rollout, target_reply
from mmcora.utils.special_tokens import ANCHOR_PLACEHOLDER

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SegZeroInputs'),
    dict(type='PackSegZeroInputs'),
]


@pytest.fixture(autouse=True)
def scope_and_thread():
    init_default_scope('mmseg')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def dataset(toy_city_root, toy_city_spec):
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(
            type='ReasoningSegDataset',
            data_root=toy_city_root,
            toy_city=toy_city_spec,
            ann_file='instructions/val.jsonl',
            build_instructions=dict(
                dataset='cityscapes', split='val', ann_file='splits/val.txt', seed=0),
            data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
            test_mode=True,
            pipeline=PIPELINE))


@pytest.fixture(scope='module')
def model(qwen_dir, sam2_dir):
    init_default_scope('mmseg')
    return MODELS.build(
        dict(
            type='SegZeroSegmentor',
            reasoner=dict(
                type='QwenReasoner', pretrained=qwen_dir, dtype='float32', reference=False),
            segmenter=dict(type='SAM2Segmenter', pretrained=sam2_dir),
            test_cfg=dict(max_new_tokens=8))).eval()


def test_pipeline_gives_the_canvas_the_original_and_targets_inside_masks(dataset):
    item = dataset[0]
    sample = item['data_samples']
    h, w = sample.ori_shape
    assert tuple(item['inputs']['canvas'].shape) == (3, 840, 840)
    assert tuple(item['inputs']['image'].shape) == (3, h, w)
    targets = sample.metainfo['segzero_targets']
    assert len(targets) == sample.num_queries
    for query, target, gt in zip(sample.queries, targets, sample.gt_masks):
        assert ANCHOR_PLACEHOLDER not in query['text']
        if target is None:
            assert not (gt == 1).any()
            continue
        for x, y in target['points_ori']:
            assert gt[y, x] == 1
        x1, y1, x2, y2 = target['box']
        assert 0 <= x1 <= x2 < 840 and 0 <= y1 <= y2 < 840


def test_targets_are_computed_once_per_record(dataset, monkeypatch):
    from mmcora.datasets.transforms import segzero
    transform = dataset.pipeline.transforms[2]
    calls = []
    original = segzero.target_from_mask
    monkeypatch.setattr(segzero, 'target_from_mask', lambda m: calls.append(1) or original(m))
    transform._cache.clear()
    first = dataset[1]['data_samples'].metainfo['segzero_targets']
    made = len(calls)
    assert made > 0
    again = dataset[1]['data_samples'].metainfo['segzero_targets']
    assert len(calls) == made and again == first


def test_conditional_text_keeps_the_anchor_in_words():
    transform = TRANSFORMS.build(dict(type='SegZeroInputs', canvas=840))
    results = dict(
        img=np.zeros((8, 16, 3), np.uint8),
        img_path='x.png',
        queries=[
            dict(text=f'Please segment the car left of the bus {ANCHOR_PLACEHOLDER}.', class_id=13)
        ],
        gt_masks=np.zeros((1, 8, 16), np.uint8))
    out = transform(results)
    assert out['queries'][0]['text'] == 'Please segment the car left of the bus.'
    assert out['segzero_targets'] == [None]


@pytest.mark.parametrize('kind', ['SAM2Segmenter', 'SAMPromptSegmenter'])
def test_segmenters_give_one_mask_per_prompt_at_original_size(kind, sam2_dir):
    cfg = dict(
        type=kind, pretrained=sam2_dir) if kind == 'SAM2Segmenter' else dict(
            type=kind, tiny=dict(img_size=256))
    segmenter = MODELS.build(cfg)
    segmenter.train()
    assert not segmenter.training and not any(p.requires_grad for p in segmenter.parameters())
    images = [np.random.RandomState(i).randint(0, 255, (60 + i, 90, 3), np.uint8) for i in (0, 1)]
    encoded = segmenter.encode(images)
    assert len(encoded) == 2
    mask = segmenter.segment(encoded, 1, (10, 5, 60, 40), [(20, 10), (50, 30)])
    assert mask.shape == (61, 90) and mask.dtype == bool
    assert segmenter.segment(encoded, 0, (10, 5, 60, 40), []).shape == (60, 90)


def _fixed_replies(model, replies, monkeypatch):
    it = iter(replies)

    def sample(prompt, num_samples, max_new_tokens=None, greedy=False, generator=None):
        text = next(it)
        ids = model.reasoner.encode_reply(text)[None]
        return Rollout(ids, torch.ones_like(ids), torch.zeros(ids.shape), [text])

    monkeypatch.setattr(model.reasoner, 'sample', sample)


def test_predict_maps_the_answer_back_and_unreadable_replies_give_empty_masks(
        model, dataset, monkeypatch):
    batch = model.data_preprocessor(pseudo_collate([dataset[0]]))
    sample = batch['data_samples'][0]
    n = sample.num_queries
    good = target_reply(dict(box=[84, 84, 420, 420], points=[[168, 168], [336, 336]]), 'x')
    _fixed_replies(model, [good] + ['I cannot see it.'] * (n - 1), monkeypatch)
    out = model(**batch, mode='predict')[0]
    h, w = out.ori_shape
    assert out.pred_masks.shape == (n, h, w) and out.pred_masks.dtype == torch.bool
    assert not out.pred_masks[1:].any()
    assert out.metainfo['pred_boxes'][0] == [
        round(84 * w / 840),
        round(84 * h / 840),
        round(420 * w / 840),
        round(420 * h / 840)
    ]
    assert out.metainfo['pred_boxes'][1] is None and out.metainfo['pred_texts'][1] == \
        'I cannot see it.'
    segmenter = model.segmenter
    expected = segmenter.segment(
        segmenter.encode(batch['inputs']['image']), 0, out.metainfo['pred_boxes'][0],
        out.metainfo['pred_points'][0])
    assert np.array_equal(out.pred_masks[0].numpy(), expected)


def test_metric_reports_box_point_and_parse_accuracy():
    metric = METRICS.build(dict(type='SegZeroMetric', per_class=False))
    gt = np.zeros((3, 20, 20), np.uint8)
    gt[0, 2:10, 2:10] = 1
    gt[1, 10:18, 10:18] = 1
    sample = dict(
        pred_masks=torch.from_numpy(gt == 1),
        gt_masks=torch.from_numpy(gt),
        queries=[dict(type='semantic', class_name='car')] * 3,
        pred_boxes=[[2, 2, 9, 9], [0, 0, 5, 5], None],
        pred_points=[[[3, 3], [8, 8]], [[12, 12], [1, 1]], None],
        segzero_targets=[dict(box_ori=[2, 2, 9, 9]),
                         dict(box_ori=[10, 10, 17, 17]), None])
    metric.process(None, [sample])
    out = metric.compute_metrics(metric.results)
    # two queries have a target: the first right on box and points, the second on neither
    assert (out['parse_rate'], out['box_acc'], out['point_acc']) == (100.0, 50.0, 50.0)
    assert out['cIoU'] == 100.0
