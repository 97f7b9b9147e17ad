"""Relation geometry on hand-built layouts, and the uniqueness rule."""
import numpy as np
import pytest

from mmcora.instructions import (RelationRules, SceneObject, extract_objects, relations_between,
                                 unique_relations)

CAR, PERSON, SIGN = 13, 11, 7
RULES = RelationRules(ground_classes=frozenset({CAR, PERSON}))


def layout(*boxes):
    """Label map 100x200 with (class, x0, y0, x1, y1) rectangles; objects in box order."""
    label = np.zeros((100, 200), np.uint8)
    for class_id, x0, y0, x1, y1 in boxes:
        label[y0:y1, x0:x1] = class_id
    objects = extract_objects(label, {b[0] for b in boxes}, min_area=1)
    by_box = {tuple(o.bbox): o for o in objects}
    return [by_box[(x0, y0, x1, y1)] for _, x0, y0, x1, y1 in boxes], objects


def test_left_right_next_to_on_one_ground_line():
    (a, b), _ = layout((CAR, 10, 50, 40, 70), (CAR, 50, 50, 80, 70))
    assert relations_between(a, b, RULES) == ['left', 'next_to']
    assert relations_between(b, a, RULES) == ['right', 'next_to']


def test_far_apart_is_not_next_to():
    (a, b), _ = layout((CAR, 10, 50, 40, 70), (CAR, 150, 50, 180, 70))
    assert relations_between(a, b, RULES) == ['left']


def test_front_and_behind_from_ground_contact():
    # the nearer car is lower in the image and overlaps the farther one horizontally
    (far, near), _ = layout((CAR, 60, 30, 90, 45), (CAR, 55, 60, 100, 90))
    assert 'front' in relations_between(near, far, RULES)
    assert 'behind' in relations_between(far, near, RULES)
    assert 'above' not in relations_between(far, near, RULES)  # image-up is depth here


def test_above_below_for_objects_off_the_ground():
    (sign, car), _ = layout((SIGN, 60, 5, 75, 20), (CAR, 50, 50, 90, 70))
    assert relations_between(sign, car, RULES) == ['above']
    assert relations_between(car, sign, RULES) == ['below']


def test_overlapping_boxes_without_margin_have_no_relation():
    # a person just in front of a car's middle: same ground line, boxes overlap
    car = SceneObject(CAR, np.zeros((1, 1), bool), (10, 50, 40, 70), 600)
    person = SceneObject(PERSON, np.zeros((1, 1), bool), (20, 48, 35, 71), 300, index=1)
    assert relations_between(car, person, RULES) == []
    assert relations_between(person, car, RULES) == []


def test_relation_must_single_out_the_target():
    # three cars in a row: "the car left of C" fits A and B; "left of B" fits A only
    (a, b, c), objects = layout((CAR, 10, 50, 30, 60), (CAR, 60, 50, 80, 60),
                                (CAR, 110, 50, 130, 60))
    assert unique_relations(a, c, objects, RULES) == []
    assert unique_relations(b, c, objects, RULES) == []
    assert 'left' in unique_relations(a, b, objects, RULES)
    assert unique_relations(c, a, objects, RULES) == []


def test_uniqueness_only_counts_the_target_class():
    # a person also stands left of the anchor, but the target is the only car there
    (car, person, anchor), objects = layout((CAR, 10, 50, 30, 60), (PERSON, 40, 45, 45, 60),
                                            (CAR, 110, 50, 130, 60))
    assert unique_relations(car, anchor, objects, RULES) == ['left']
    assert unique_relations(person, anchor, objects, RULES) == ['left']


@pytest.mark.parametrize('shift', [0, 3])
def test_small_components_are_not_objects(shift):
    label = np.zeros((50, 50), np.uint8)
    label[10:20, 10:20] = CAR
    label[30 + shift, 30] = CAR  # a one-pixel speck
    assert len(extract_objects(label, [CAR], min_area=4)) == 1
    assert len(extract_objects(label, [CAR], min_area=1)) == 2


RIDER, BICYCLE = 12, 18
MOUNT_RULES = RelationRules(
    ground_classes=frozenset({CAR, PERSON, RIDER, BICYCLE}),
    mounted_classes=frozenset({RIDER}),
    mount_classes=frozenset({BICYCLE}))


def test_a_rider_on_its_bicycle_is_above_it_not_behind():
    (rider, bike), _ = layout((RIDER, 50, 20, 60, 41), (BICYCLE, 40, 41, 70, 60))
    assert relations_between(rider, bike, MOUNT_RULES) == ['above']
    assert relations_between(bike, rider, MOUNT_RULES) == ['below']
    # without the mount rule the ground contacts would call the bicycle "in front"
    assert 'front' in relations_between(bike, rider, RelationRules(MOUNT_RULES.ground_classes))


def test_a_rider_beside_a_bicycle_is_not_mounted():
    (rider, bike), _ = layout((RIDER, 10, 20, 20, 60), (BICYCLE, 40, 40, 70, 60))
    assert relations_between(rider, bike, MOUNT_RULES) == ['left']


def test_slivers_are_not_objects():
    label = np.zeros((50, 50), np.uint8)
    label[10:40, 10:12] = CAR  # 2 pixels wide: what an occluder left of a car
    label[10:20, 30:40] = CAR
    assert len(extract_objects(label, [CAR], min_area=4, min_side=3)) == 1
    assert len(extract_objects(label, [CAR], min_area=4, min_side=1)) == 2


def test_above_needs_the_objects_to_be_horizontally_close():
    (sign, car), _ = layout((SIGN, 5, 5, 15, 20), (CAR, 150, 50, 190, 70))
    assert relations_between(sign, car, RULES) == ['left']
