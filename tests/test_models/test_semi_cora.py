"""SemiCORASegmentor: the frozen consistency snapshot, stage-3 losses, the token bank."""
import copy
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

from mmcora.datasets import read_name_list
from mmcora.models.segmentors import TokenBank
from ..conftest import REPO
from ..test_datasets.test_semi_reasoning import PIPELINE, write_pseudo
from .test_cora import shrink

SEMI_CONFIG = osp.join(REPO, 'configs', 'cora', 'cora-semi_tiny_3x600_toy-city-1-30.py')


@pytest.fixture(scope='module')
def datasets(toy_city_root, toy_city_spec, tmp_path_factory):
    init_default_scope('mmseg')
    cfg = Config.fromfile(SEMI_CONFIG)
    labeled = cfg.labeled_reasoning.to_dict()
    labeled.update(
        data_root=toy_city_root,
        toy_city=toy_city_spec,
        ann_file='instructions/1_4_labeled.jsonl',
        build_instructions=dict(
            dataset='cityscapes', split='train', ann_file='splits/1_4/labeled.txt'))
    pseudo = str(tmp_path_factory.mktemp('pseudo'))
    write_pseudo(toy_city_root, pseudo,
                 read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt')))
    unlabeled = DATASETS.build(
        dict(
            type='SemiReasoningDataset',
            data_root=toy_city_root,
            ann_file='splits/1_30/unlabeled.txt',
            pseudo_dir=pseudo,
            pipeline=PIPELINE))
    return DATASETS.build(labeled), unlabeled


def mixed_batch(datasets, seed=0):
    np.random.seed(seed)
    labeled, unlabeled = datasets
    return pseudo_collate([labeled[0], labeled[1], unlabeled[0], unlabeled[1]])


def build(llava_dir, **overrides):
    cfg = Config.fromfile(SEMI_CONFIG).model
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(shrink(cfg, llava_dir))


@pytest.fixture(scope='module')
def llava_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('models') / 'tiny-llava')


def step(model, data, lr=0.05):
    """One SGD step on the model's loss; returns the losses."""
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * p.grad
                p.grad = None
    return losses


def encodings(model, data, rows=(2, 3)):
    sam, clip = model.extract_feat(data['inputs'])
    rows = list(rows)
    return sam[rows], clip[rows], [data['data_samples'][i] for i in rows]


def test_stage3_losses_and_gradients(datasets, llava_dir):
    model = build(llava_dir).train()
    model.enter_stage('unlabeled')
    data = model.data_preprocessor(mixed_batch(datasets), True)
    losses = model(**data, mode='loss')
    assert {'loss_ce', 'loss_mask_bce', 'loss_mask_dice', 'loss_pseudo_mask',
            'loss_token'} <= set(losses)
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert 0 < float(losses['pseudo_weight']) <= 1
    losses['loss_pseudo_mask'].backward()
    assert model.projector.layers[0].weight.grad.abs().sum() > 0
    assert all(not b.requires_grad for b in model.consistency_snapshot.buffers())
    tokens, classes = model.pop_bank_update()
    num_labeled = sum(s.num_queries for s in data['data_samples'][:2])
    assert tokens.shape == (num_labeled, model.sam.prompt_dim) and not tokens.requires_grad
    assert model.pop_bank_update() is None


def test_consistency_passes_use_the_frozen_snapshot(datasets, llava_dir):
    """After training steps, the rephrasing masks are those of the model as stage 3 began,
    computed by the same modules with the snapshot swapped in (not the live weights)."""
    model = build(llava_dir).train()
    data = model.data_preprocessor(mixed_batch(datasets), True)
    with pytest.raises(RuntimeError, match='snapshot has not been taken'):
        model.consistency_probs(*encodings(model, data))
    model.enter_stage('unlabeled')
    frozen = copy.deepcopy(model).eval()
    for seed in range(3):
        step(model, model.data_preprocessor(mixed_batch(datasets, seed), True))
    live = {n: p.detach().clone() for n, p in model.named_parameters()}
    probs = model.consistency_probs(*encodings(model, data))
    assert model.training
    assert all(torch.equal(p, live[n]) for n, p in model.named_parameters())  # restored
    # the reference: the copy taken at the snapshot, each rephrasing as an ordinary query
    sam, clip, samples = encodings(frozen, data)
    for b, sample in enumerate(samples):
        rephrased = sample.clone()
        rephrased.set_metainfo(dict(queries=sample.consistency_queries))
        with torch.no_grad():
            texts, answers, index, _ = frozen.gather_queries([rephrased])
            tokens = frozen.mllm.tokenize(texts, answers, index.device)
            _, states, _ = frozen.mllm.forward_full(clip[b:b + 1], index, tokens)
            expected = frozen.decode_masks(sam[b:b + 1], frozen.projector(states), index,
                                           [rephrased])[0].sigmoid()
        assert probs[b].shape == (6, *sample.ori_shape)
        assert torch.allclose(probs[b], expected, atol=1e-4), (probs[b] - expected).abs().max()
    # and the live model, which has trained since, gives other masks
    model.consistency_snapshot.take(model)
    moved = model.consistency_probs(*encodings(model, data))
    assert not torch.allclose(moved[0], probs[0], atol=1e-3)


def test_resumed_model_keeps_its_snapshot(datasets, llava_dir):
    model = build(llava_dir)
    model.enter_stage('unlabeled')
    state = copy.deepcopy(model.state_dict())
    step(model, model.data_preprocessor(mixed_batch(datasets), True))
    resumed = build(llava_dir)
    resumed.load_state_dict(state)
    resumed.enter_stage('unlabeled')  # the loop calls it on resume: must not retake
    assert bool(resumed.consistency_snapshot.taken)
    for name, copy_ in resumed.consistency_snapshot.copies().items():
        assert torch.equal(copy_, state[f'consistency_snapshot.{name.replace(".", "__")}'])


def test_confidence_baseline_needs_no_snapshot(datasets, llava_dir):
    model = build(
        llava_dir,
        loss_pseudo=dict(type='VarianceWeightedLoss', mapping='confidence'),
        loss_token=None,
        token_bank=None)
    assert model.consistency_snapshot is None and model.token_bank is None
    data = model.data_preprocessor(mixed_batch(datasets), True)
    sam, clip, samples = encodings(model, data)
    weights = model.pseudo_weights(sam, clip, samples)
    expected = (samples[0].gt_confidence >= 0.95).float()
    assert torch.equal(weights[0], expected) and 0 < float(expected.mean()) < 1
    assert 'loss_token' not in model(**data, mode='loss')


def test_snapshot_excludes_what_the_passes_never_read(llava_dir):
    model = build(llava_dir)
    names = set(model.consistency_snapshot.names)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any('lora_A' in n for n in names) and any('mask_decoder' in n for n in names)
    assert any('embed_tokens' in n for n in names)
    assert trainable - names == {n for n in trainable if 'lm_head' in n}
    assert model.consistency_snapshot.num_bytes == sum(p.numel() * p.element_size()
                                                       for n, p in model.named_parameters()
                                                       if n in names)


def test_token_bank_is_a_per_class_fifo():
    bank = TokenBank(num_classes=3, dim=2, size_per_class=2)
    bank.push(torch.tensor([[1., 0.], [2., 0.], [3., 0.]]), torch.tensor([0, 0, 0]))
    bank.push(torch.tensor([[9., 9.]]), torch.tensor([2]))
    tokens, classes = bank.contents()
    assert classes.tolist() == [0, 0, 2]
    assert sorted(tokens[:2, 0].tolist()) == [2., 3.]  # the oldest (1) was replaced
    with pytest.raises(ValueError, match='class ids'):
        bank.push(torch.zeros(1, 2), torch.tensor([3]))
