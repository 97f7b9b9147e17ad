"""Seg-Zero on pseudo-labeled images: targets from the teacher's pseudo-masks, each weighted
by the teacher's confidence over it (reliability), which scales its GRPO group."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmcora.datasets import SemiReasoningDataset, read_name_list
from ..test_datasets.test_semi_reasoning import write_pseudo
from .test_grpo import _LengthReward  # noqa: F401  registers the test reward

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPseudoLabel'),
    dict(type='SamplePseudoQueries', num_queries=1, min_area_ratio=0.01),
    dict(type='SegZeroInputs', canvas=840),
    dict(type='PackSegZeroInputs'),
]


@pytest.fixture(scope='module')
def pseudo_dir(toy_city_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('segzero_pseudo'))
    write_pseudo(toy_city_root, out,
                 read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt')))
    return out


def test_pseudo_targets_carry_the_teachers_confidence(toy_city_root, pseudo_dir):
    init_default_scope('mmseg')
    dataset = SemiReasoningDataset(
        ann_file='splits/1_30/unlabeled.txt',
        data_root=toy_city_root,
        pseudo_dir=pseudo_dir,
        num_queries=1,
        pipeline=PIPELINE)
    np.random.seed(0)
    seen = []
    for index in range(4):
        sample = dataset[index]['data_samples']
        query, target = sample.queries[0], sample.metainfo['segzero_targets'][0]
        info = dataset.get_data_info(index)
        label = cv2.imread(info['pseudo_path'], cv2.IMREAD_UNCHANGED)
        conf = cv2.imread(info['conf_path'], cv2.IMREAD_UNCHANGED) / 255.
        mask = label == query['class_id']
        assert target['reliability'] == pytest.approx(conf[mask].mean(), abs=1e-6)
        x1, y1, x2, y2 = target['box_ori']
        ys, xs = np.nonzero(mask)
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max(), ys.max())
        seen.append(target['reliability'])
    # the fixture's confidence is 0.5 on the left half, 1 on the right: the weights differ
    assert 0.5 <= min(seen) < max(seen) <= 1.0


def test_reliability_scales_the_groups_policy_loss(qwen_dir, sam2_dir):
    from mmcora.structures import ReasoningDataSample
    init_default_scope('mmseg')
    model = MODELS.build(
        dict(
            type='SegZeroSegmentor',
            reasoner=dict(
                type='QwenReasoner', pretrained=qwen_dir, dtype='float32', max_new_tokens=10),
            segmenter=dict(type='SAM2Segmenter', pretrained=sam2_dir),
            reward=dict(type='SegZeroReward', terms=[dict(type='_LengthReward')]),
            train_cfg=dict(num_generations=4)))
    inputs = dict(
        canvas=[np.zeros((840, 840, 3), np.uint8)], image=[np.zeros((64, 128, 3), np.uint8)])

    def losses(reliability):
        target = dict(box=[10, 10, 100, 100], points=[[20, 20], [50, 50]])
        if reliability is not None:
            target['reliability'] = reliability
        sample = ReasoningDataSample()
        sample.set_metainfo(
            dict(
                ori_shape=(64, 128),
                canvas=840,
                queries=[dict(text='the car', class_name='car', type='pseudo')],
                segzero_targets=[target]))
        torch.manual_seed(0)  # the same G rollouts for every call
        return model(inputs, [sample], mode='loss')

    labeled, half, none = losses(None), losses(0.5), losses(0.0)
    assert float(labeled['reliability']) == 1.0 and float(half['reliability']) == 0.5
    assert float(labeled['loss_policy']) != 0.
    assert float(half['loss_policy']) == pytest.approx(0.5 * float(labeled['loss_policy']))
    assert float(none['loss_policy']) == 0.
    assert float(half['loss_kl']) == pytest.approx(float(labeled['loss_kl']))  # KL unweighted
