"""Objects from instance maps: touching instances stay apart, groups and other classes don't."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmcora.datasets.toy_city_generator import write_scene
from mmcora.datasets.toy_city_render import CAR, render_scene
from mmcora.instructions import (LAYOUTS, InstructionEngine, build_instruction_set, extract_objects,
                                 read_instruction_file)
from mmcora.instructions.vocabulary import VOCABULARIES

LAYOUT = LAYOUTS['cityscapes']
CAR_LABEL_ID, POLE = 26, 5


def _engine(**kwargs) -> InstructionEngine:
    return InstructionEngine(
        LAYOUT.classes,
        VOCABULARIES['cityscapes'],
        LAYOUT.object_classes,
        LAYOUT.ground_classes,
        instance_classes=LAYOUT.instance_classes,
        **kwargs)


def _two_touching_cars():
    """A hand-made Cityscapes frame: two cars side by side (one component), a pole, a group."""
    label = np.zeros((64, 128), np.uint8)  # road
    instances = np.full((64, 128), 7, np.uint16)  # road's labelId
    label[30:50, 20:45] = CAR
    instances[30:50, 20:45] = CAR_LABEL_ID * 1000
    label[32:50, 45:70] = CAR  # touches the first car along x = 45
    instances[32:50, 45:70] = CAR_LABEL_ID * 1000 + 1
    label[20:50, 90:110] = CAR  # a car *group* region: labelId only, no single instance
    instances[20:50, 90:110] = CAR_LABEL_ID
    label[5:50, 80:84] = POLE  # poles have no instances: a component
    instances[5:50, 80:84] = 17
    return label, instances


def test_touching_cars_are_two_objects_and_groups_none():
    label, instances = _two_touching_cars()
    n_components = cv2.connectedComponents((label[:, :80] == CAR).astype(np.uint8))[0] - 1
    assert n_components == 1
    objects = extract_objects(label, [CAR, POLE], 10, 2, instances, [CAR])
    cars = [o for o in objects if o.class_id == CAR]
    assert len(cars) == 2
    assert sorted(o.bbox for o in cars) == [(20, 30, 45, 50), (45, 32, 70, 50)]
    assert [o.bbox for o in objects if o.class_id == POLE] == [(80, 5, 84, 50)]
    # without the instance map the touching cars merge and the group counts as a car
    merged = extract_objects(label, [CAR], 10, 2)
    assert sorted(o.bbox for o in merged) == [(20, 30, 70, 50), (90, 20, 110, 50)]
    with pytest.raises(ValueError, match=r'instance map of size \(64, 64\)'):
        extract_objects(label, [CAR], 10, 2, instances[:, :64], [CAR])


def test_builder_reads_instance_ids_of_cityscapes_data(tmp_path):
    label, instances = _two_touching_cars()
    root = str(tmp_path)
    gt = osp.join(root, 'gtFine', 'train', 'x')
    img = osp.join(root, 'leftImg8bit', 'train', 'x')
    for directory in (gt, img):
        os.makedirs(directory)
    name = 'x_000000_000019'
    cv2.imwrite(osp.join(img, f'{name}_leftImg8bit.png'), np.zeros((64, 128, 3), np.uint8))
    cv2.imwrite(osp.join(gt, f'{name}_gtFine_labelTrainIds.png'), label)
    cv2.imwrite(osp.join(gt, f'{name}_gtFine_instanceIds.png'), instances)
    (tmp_path / 'list.txt').write_text(f'x/{name}\n')
    out = str(tmp_path / 'set.jsonl')
    summary = build_instruction_set(
        root, 'cityscapes', 'train', 'list.txt', out=out, conditional_per_image=8)
    assert summary['images_with_instance_maps'] == 1
    header, records = read_instruction_file(out)
    assert header['images_with_instance_maps'] == 1
    boxes = {tuple(q.target.bbox) for q in records[0].queries if q.type == 'conditional'}
    boxes |= {tuple(q.anchor.bbox) for q in records[0].queries if q.type == 'conditional'}
    car_boxes = {b for b in boxes if label[b[1], b[0]] == CAR}
    assert car_boxes and car_boxes <= {(20, 30, 45, 50), (45, 32, 70, 50)}
    # a label map of another size than its instance map is refused, naming the file
    cv2.imwrite(osp.join(gt, f'{name}_gtFine_instanceIds.png'), instances[:32])
    with pytest.raises(ValueError, match='instanceIds.png: instance map is'):
        build_instruction_set(root, 'cityscapes', 'train', 'list.txt', out=out)


def _touching_toy_scene():
    for index in range(200):
        image, train_ids, inst = render_scene(np.random.default_rng([11, index]), 128, 256)
        cars = (train_ids == CAR).astype(np.uint8)
        count, components = cv2.connectedComponents(cars)
        for comp in range(1, count):
            ids = np.unique(inst[components == comp])
            if len(ids) >= 2 and all((inst[components == comp] == i).sum() >= 40 for i in ids):
                return image, train_ids, inst, components == comp
    raise AssertionError('no toy scene with two touching cars in 200 draws')


def test_toy_scene_with_touching_cars_gives_one_object_per_car(tmp_path):
    image, train_ids, inst, row = _touching_toy_scene()
    write_scene(str(tmp_path), 'train', 'aachen', 'aachen_000000_000019', image, train_ids, inst)
    gt = osp.join(str(tmp_path), 'gtFine', 'train', 'aachen', 'aachen_000000_000019_gtFine_')
    instances = cv2.imread(gt + 'instanceIds.png', cv2.IMREAD_UNCHANGED)
    engine = _engine(min_object_area=1e-4, min_object_side=0.01)
    _, objects = engine.draft('aachen/aachen_000000_000019', train_ids, instances)
    in_row = [o for o in objects if o.class_id == CAR and (o.mask & row).any()]
    assert len(in_row) >= 2  # one connected component, two (or more) cars
    assert all(np.unique(instances[o.mask]).size == 1 for o in in_row)
    _, merged = engine.draft('aachen/aachen_000000_000019', train_ids, None)
    assert len([o for o in merged if o.class_id == CAR and (o.mask & row).any()]) == 1
