"""Seg-Zero targets from masks: the box of extreme pixels, two inscribed points, the canvas."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope

import mmcora  # noqa: F401
from mmcora.models.segzero import (CanvasTransform, ParsedReply, inscribed_points, mask_box,
                                   parse_reply, target_from_mask)


def test_box_is_the_extreme_pixels_inclusive():
    mask = np.zeros((20, 30), bool)
    mask[3:8, 5:12] = True
    mask[15, 25] = True
    assert mask_box(mask) == (5, 3, 25, 15)
    with pytest.raises(ValueError, match='empty mask'):
        mask_box(np.zeros((4, 4), bool))


def test_two_points_sit_in_the_two_halves_of_a_dumbbell():
    mask = np.zeros((40, 100), bool)
    mask[5:35, 5:35] = True  # big square, left
    mask[10:30, 70:90] = True  # smaller square, right
    mask[18:22, 35:70] = True  # thin bar between them
    p1, p2 = inscribed_points(mask)
    assert 5 <= p1[0] < 35 and 70 <= p2[0] < 90  # one inscribed circle in each square
    assert mask[p1[1], p1[0]] and mask[p2[1], p2[0]]


def test_single_pixel_and_border_masks():
    one = np.zeros((5, 5), bool)
    one[2, 3] = True
    assert inscribed_points(one) == ((3, 2), (3, 2))
    border = np.zeros((10, 10), bool)
    border[:, :4] = True  # cut by the left image border: the border counts as outside
    (x1, _), (x2, _) = inscribed_points(border)
    assert x1 in (1, 2) and x2 in (1, 2)


@pytest.fixture(scope='module')
def val_masks(toy_city_root):
    """Every query's target mask of the small toy city's val instructions."""
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS
    dataset = DATASETS.build(
        dict(
            type='ReasoningSegDataset',
            data_root=toy_city_root,
            ann_file='instructions/val.jsonl',
            data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
            build_instructions=dict(dataset='cityscapes', split='val', ann_file='splits/val.txt'),
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='LoadReasoningAnnotations')]))
    masks = []
    for i in range(len(dataset)):
        masks.extend(m == 1 for m in dataset[i]['gt_masks'])
    return masks


def test_both_points_inside_the_mask_for_every_toy_val_target(val_masks):
    assert len(val_masks) > 50
    for mask in val_masks:
        target = target_from_mask(mask)
        x1, y1, x2, y2 = target.box
        for x, y in target.points:
            assert mask[y, x] and x1 <= x <= x2 and y1 <= y <= y2


@pytest.mark.parametrize('hw', [(128, 256), (1024, 2048), (256, 256), (719, 1281)])
def test_canvas_round_trip_within_one_pixel(hw):
    """Through the finer grid and back, a coordinate of the coarser grid moves at most 1 px
    (per axis: the canvas is coarser along a side longer than 840 px, finer along a shorter)."""
    transform = CanvasTransform(*hw)
    for axis, side in ((0, hw[1]), (1, hw[0])):
        if side >= transform.canvas:  # start on the canvas, through the original
            for v in range(transform.canvas):
                point = (v, v)
                back = transform.point_to_canvas(transform.point_to_original(point))
                assert abs(back[axis] - v) <= 1, (hw, axis, v, back)
        else:  # start on the original image, through the canvas
            for v in range(side):
                point = (v, v)
                back = transform.point_to_original(transform.point_to_canvas(point))
                assert abs(back[axis] - v) <= 1, (hw, axis, v, back)


def test_canvas_maps_back_as_seg_zero_and_clamps():
    transform = CanvasTransform(1024, 2048)
    assert transform.box_to_original([420.7, 420, 839, 839]) == (1024, 512, 2046, 1023)
    assert transform.point_to_original((900, -5)) == (2047, 0)
    with pytest.raises(ValueError, match='positive sizes'):
        CanvasTransform(0, 10)


@pytest.mark.parametrize(
    'text, box, points',
    [
        ('<think>a</think><answer>{"bbox": [10, 20, 30, 40], "points_1": [12, 22], '
         '"points_2": [28, 38]}</answer>', (10, 20, 30, 40), [(12, 22), (28, 38)]),
        ("<think>a {b}</think><answer>{'bbox': [30, 40, 10, 20], 'points_1': [12, 22]}</answer>",
         (10, 20, 30, 40), [(12, 22)]),  # single quotes, braces in think, box reordered
        ('<answer>```json\n{"bbox_2d": ["10", 20.6, 30, 900], "points": [[1, 2], [3, 4]]}\n```'
         '</answer>', (10, 21, 30, 839), [(1, 2), (3, 4)]),  # fences, strings, floats, clamp
        ('Sure: {"bbox": [1, 2, 3, 4]}', (1, 2, 3, 4), []),  # no tags at all
    ])
def test_tolerant_parser(text, box, points):
    parsed = parse_reply(text)
    assert parsed.ok and parsed.box == box and parsed.points == points


@pytest.mark.parametrize('text, reason', [
    ('<think>hmm</think><answer>the car</answer>', 'no answer object'),
    ('<answer>{"points_1": [1, 2]}</answer>', 'no box of 4 numbers'),
    ('<answer>{"bbox": [1, 2, "x", 4]}</answer>', 'no box of 4 numbers'),
    ('<answer>{"bbox": [NaN, 2, 3, 4]}</answer>', 'no box of 4 numbers'),
    ('<answer>{"bbox": [1, 2, 3, Infinity]}</answer>', 'no box of 4 numbers'),
    ('<answer>{"bbox": [1, 2, 3, 1e999]}</answer>', 'no box of 4 numbers'),
])
def test_unreadable_replies_say_why(text, reason):
    parsed = parse_reply(text)
    assert isinstance(parsed, ParsedReply) and not parsed.ok and reason in parsed.error
