"""ReasoningIoUMetric against hand-computed LISA cIoU / gIoU values."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement, PixelData

import mmcora.evaluation  # noqa: F401  registers ReasoningIoUMetric
from mmcora.evaluation import ReasoningIoUMetric, reasoning_iou

I = 255  # noqa: E741  ignore (the letter reads as a cell of the masks below)

# Five 2×3 masks over two images. Per mask, counted by hand (pixels as (row, col)):
#  0 car/semantic      pred {00,02,10} gt {00,01}                 I=1 U=4  IoU 1/4
#  1 road/attribute    empty pred, empty gt                       I=0 U=0  IoU 1 (LISA)
#  2 road/semantic     ignore at 00,01 (pred there does not count)
#                      valid pred {02,12}, gt {02,11,12}          I=2 U=3  IoU 2/3
#  3 car/conditional   pred {00,01}, empty gt (false positive)    I=0 U=2  IoU 0
#  4 car/semantic      pred all six, gt {10,11,12}                I=3 U=6  IoU 1/2
MASKS = [
    ([[1, 0, 1], [1, 0, 0]], [[1, 1, 0], [0, 0, 0]], 'semantic', 'car'),
    ([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]], 'attribute', 'road'),
    ([[1, 1, 1], [0, 0, 1]], [[I, I, 1], [0, 1, 1]], 'semantic', 'road'),
    ([[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]], 'conditional', 'car'),
    ([[1, 1, 1], [1, 1, 1]], [[0, 0, 0], [1, 1, 1]], 'semantic', 'car'),
]
HAND_I = [1, 0, 2, 0, 3]
HAND_U = [4, 0, 3, 2, 6]
IMAGES = {'a.png': [0, 1, 2], 'b.png': [3, 4]}

EXPECTED = {
    # ΣI/ΣU = 6/15; gIoU = (1/4 + 1 + 2/3 + 0 + 1/2) / 5 = 0.48333
    'cIoU': 40.0,
    'gIoU': 48.33,
    'num_masks': 5,
    # semantic: masks 0, 2, 4 -> 6/13 = 0.461538; (1/4 + 2/3 + 1/2) / 3 = 0.472222
    'cIoU/semantic': 46.15,
    'gIoU/semantic': 47.22,
    # attribute: only the empty-union mask -> ΣU == 0 gives 0; gIoU counts it as 1
    'cIoU/attribute': 0.0,
    'gIoU/attribute': 100.0,
    # conditional: the false positive on an empty gt
    'cIoU/conditional': 0.0,
    'gIoU/conditional': 0.0,
    # car: masks 0, 3, 4 -> 4/12; road: masks 1, 2 -> 2/3
    'cIoU/class/car': 33.33,
    'cIoU/class/road': 66.67,
}


def sample(path: str, mask_ids: list, as_pixel_data: bool = False) -> dict:
    pred = torch.tensor([MASKS[i][0] for i in mask_ids], dtype=torch.bool)
    gt = torch.tensor([MASKS[i][1] for i in mask_ids], dtype=torch.uint8)
    queries = [dict(type=MASKS[i][2], class_name=MASKS[i][3], text='segment it') for i in mask_ids]
    if as_pixel_data:
        pred, gt = dict(data=pred), dict(data=gt)
    return dict(img_path=path, pred_masks=pred, gt_masks=gt, queries=queries)


def evaluate(metric: ReasoningIoUMetric, samples: list) -> dict:
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_intersection_and_union_per_mask_by_hand():
    pred = torch.tensor([m[0] for m in MASKS], dtype=torch.bool)
    gt = torch.tensor([m[1] for m in MASKS], dtype=torch.uint8)
    inter, union = ReasoningIoUMetric.intersect_and_union(pred, gt, ignore_index=I)
    assert (inter, union) == (HAND_I, HAND_U)


def test_metric_values_per_type_and_class():
    metric = ReasoningIoUMetric()
    metrics = evaluate(metric, [sample(p, ids) for p, ids in IMAGES.items()])
    assert metrics == EXPECTED
    assert list(metrics)[:3] == ['cIoU', 'gIoU', 'num_masks']
    # One entry per image of plain scalars: what mmengine gathers across ranks.
    assert len(metric.results) == 2
    assert [tuple(r) for r in metric.results[1]] == [(0, 2, 'conditional', 'car'),
                                                     (3, 6, 'semantic', 'car')]


def test_prediction_inside_ignore_region_does_not_count():
    gt = torch.tensor([[[I, I], [1, 0]]], dtype=torch.uint8)
    base = dict(img_path='x', gt_masks=gt, queries=[dict(type='semantic', class_name='c')])
    exact = torch.tensor([[[0, 0], [1, 0]]], dtype=torch.bool)
    spill = torch.tensor([[[1, 1], [1, 0]]], dtype=torch.bool)
    for pred in (exact, spill):
        metrics = evaluate(ReasoningIoUMetric(), [dict(base, pred_masks=pred)])
        assert (metrics['cIoU'], metrics['gIoU']) == (100.0, 100.0)


def test_empty_gt_empty_pred_alone_and_with_false_positive():
    empty = sample('a', [1])
    assert evaluate(ReasoningIoUMetric(), [empty])['gIoU'] == 100.0
    assert evaluate(ReasoningIoUMetric(), [empty])['cIoU'] == 0.0  # 0/0 -> 0
    metrics = evaluate(ReasoningIoUMetric(), [sample('a', [1, 3])])
    assert (metrics['cIoU'], metrics['gIoU']) == (0.0, 50.0)


def test_switches_and_accepted_input_forms():
    metric = ReasoningIoUMetric(per_class=False, per_type=False)
    samples = [sample(p, ids, as_pixel_data=True) for p, ids in IMAGES.items()]
    samples[0]['pred_masks']['data'] = samples[0]['pred_masks']['data'].to(torch.uint8)
    samples[1]['pred_masks'] = samples[1]['pred_masks']['data'].numpy()
    assert evaluate(metric, samples) == {'cIoU': 40.0, 'gIoU': 48.33, 'num_masks': 5}


def test_class_table_logged_in_dataset_order(monkeypatch):
    logged = []
    monkeypatch.setattr(reasoning_iou, 'print_log', lambda msg, **kw: logged.append(msg))
    metric = ReasoningIoUMetric()
    metric.dataset_meta = dict(classes=('sky', 'road', 'car'))
    metrics = evaluate(metric, [sample(p, ids) for p, ids in IMAGES.items()])
    assert [k for k in metrics if '/class/' in k] == ['cIoU/class/road', 'cIoU/class/car']
    table = logged[-1]
    assert 'sky' not in table  # no masks, no row
    assert table.index('road') < table.index('car')
    rows = {
        line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:5]]
        for line in table.splitlines() if line.startswith('|')
    }
    assert rows['car'] == ['33.33', '25.0', '3']  # gIoU (1/4 + 0 + 1/2) / 3
    assert rows['road'] == ['66.67', '83.33', '2']  # gIoU (1 + 2/3) / 2


def test_no_masks_gives_zeros_not_nan():
    empty = dict(
        img_path='t',
        pred_masks=torch.zeros(0, 2, 2, dtype=torch.bool),
        gt_masks=torch.zeros(0, 2, 2, dtype=torch.uint8),
        queries=[])
    metrics = evaluate(ReasoningIoUMetric(), [empty])
    assert (metrics['cIoU'], metrics['gIoU'], metrics['num_masks']) == (0.0, 0.0, 0)


@pytest.mark.parametrize('change, message', [
    (dict(pred_masks=torch.zeros(3, 2, 2, dtype=torch.bool)), r'pred_masks \(3, 2, 2\)'),
    (dict(gt_masks=torch.zeros(3, 3, 2, dtype=torch.uint8)), r'gt_masks \(3, 3, 2\)'),
    (dict(
        pred_masks=torch.zeros(2, 3, dtype=torch.bool),
        gt_masks=torch.zeros(2, 3, dtype=torch.uint8)), r'\(N, H, W\)'),
    (dict(queries=[dict(type='semantic', class_name='car')]), '1 queries for 3 masks'),
    (dict(queries=[dict(type='semantic')] * 3), 'class_name'),
    (dict(pred_masks=torch.full((3, 2, 3), 0.3)), 'binary'),
    (dict(gt_masks=torch.full((3, 2, 3), 7, dtype=torch.uint8)), r'only 0, 1 and 255'),
])
def test_malformed_samples_raise_naming_the_image(change, message):
    bad = dict(sample('city/bad.png', [0, 1, 2]), **change)
    with pytest.raises(ValueError, match=message) as info:
        ReasoningIoUMetric().process({}, [bad])
    assert 'city/bad.png' in str(info.value)


def test_missing_key_named_and_index_used_without_img_path():
    bad = sample('x', [0])
    del bad['img_path'], bad['gt_masks']
    with pytest.raises(ValueError, match=r"#0 .*'gt_masks'"):
        ReasoningIoUMetric().process({}, [bad])


def test_through_mmengine_evaluator_and_registry():
    init_default_scope('mmseg')
    evaluator = Evaluator(dict(type='ReasoningIoUMetric', per_class=False))
    assert isinstance(evaluator.metrics[0], ReasoningIoUMetric)
    elements = []
    for path, ids in IMAGES.items():
        s = sample(path, ids)
        element = BaseDataElement(metainfo=dict(img_path=path))
        element.pred_masks, element.gt_masks, element.queries = (s['pred_masks'], s['gt_masks'],
                                                                 s['queries'])
        element.unused = PixelData(data=torch.zeros(1, 2, 3))
        elements.append(element)
    evaluator.process(data_samples=elements, data_batch=dict(inputs=[]))
    # size counts images; one result per image survives mmengine's trimming to `size`.
    metrics = evaluator.evaluate(size=len(IMAGES))
    expected = {f'reason/{k}': v for k, v in EXPECTED.items() if '/class/' not in k}
    assert metrics == expected
