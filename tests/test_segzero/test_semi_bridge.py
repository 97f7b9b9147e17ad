"""Seg-Zero on pseudo-labeled images: targets from the teacher's pseudo-masks, each weighted
by the teacher's confidence over it (reliability), which scales its GRPO group."""
import itertools
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATA_SAMPLERS, DATASETS, MODELS

from mmcora.datasets import SemiReasoningDataset, read_name_list
from mmcora.engine.stages import resolve_refs
from ..conftest import REPO
from ..test_datasets.test_semi_reasoning import write_pseudo
from .test_configs import shrink
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


SEMI_CONFIG = osp.join(REPO, 'configs', 'segzero',
                       'segzero_tiny_sft-600-grpo-100_toy-city-1-30_semi.py')


def test_semi_config_mixes_labeled_and_pseudo_prompts(toy_city_root, toy_city_spec, pseudo_dir,
                                                      qwen_dir, sam2_dir):
    """The semi config's GRPO stage: each batch is one labeled image (2 queries) and two
    pseudo-labeled ones (1 query each, with reliability); the warm start keeps the labeled
    data. One GRPO step on such a batch logs the mean reliability of its 4 prompts."""
    cfg = Config.fromfile(SEMI_CONFIG)
    sft, grpo = cfg.train_cfg.stages
    assert (sft.name, grpo.name, grpo.dataloader) == ('sft', 'grpo', 'grpo_dataloader')
    assert sft.get('dataloader') is None  # the warm start: the toy config's labeled data
    assert cfg.train_dataloader.dataset == dict(ref='labeled_segzero')  # one entry for both
    cfg.labeled_segzero.update(data_root=toy_city_root, toy_city=toy_city_spec)
    cfg.pseudo_labeled.update(
        data_root=toy_city_root, toy_city=toy_city_spec, pseudo_dir=pseudo_dir)
    loader = resolve_refs(grpo.dataloader, cfg, 'train_cfg.stages[1].dataloader')
    dataset = DATASETS.build(loader['dataset'])
    sampler = DATA_SAMPLERS.build(dict(loader['sampler'], dataset=dataset, seed=0))
    np.random.seed(0)
    batch = [dataset[i] for i in itertools.islice(iter(sampler), loader['batch_size'])]
    kinds = [[q['type'] for q in item['data_samples'].queries] for item in batch]
    assert sum(k == ['pseudo'] for k in kinds) == 2 and sum(len(k) for k in kinds) == 4
    weights = [
        t.get('reliability', 1.0) for item in batch
        for t in item['data_samples'].metainfo['segzero_targets']
    ]
    assert all(0.5 <= w <= 1.0 for w in weights) and min(weights) < 1.0

    model = MODELS.build(shrink(cfg.model, qwen_dir, sam2_dir))
    model.enter_stage('grpo')
    torch.manual_seed(0)
    losses = model(**model.data_preprocessor(pseudo_collate(batch), True), mode='loss')
    assert float(losses['reliability']) == pytest.approx(np.mean(weights), abs=1e-6)
    assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))
