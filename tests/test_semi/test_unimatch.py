"""UniMatch pieces: multi-source sampler, aligned views, preprocessor, the loss."""
import itertools
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset, ConcatDataset, pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmcora  # noqa: F401
from mmcora.datasets import MultiSourceSampler
from ..conftest import REPO

CONFIG = osp.join(REPO, 'configs', 'unimatch', 'unimatch_fcn-r18-tiny_toy-city-1-30.py')


class Sized(torch.utils.data.Dataset):

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


class Numbers(BaseDataset):
    """A dataset of n plain items."""

    def __init__(self, n):
        self.n = n
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(i=i) for i in range(self.n)]


def _concat(*sizes):
    return ConcatDataset([Numbers(n) for n in sizes])


def test_multi_source_batches_keep_the_ratio_and_cycle_small_sources():
    dataset = _concat(3, 50)
    sampler = MultiSourceSampler(dataset, batch_size=4, source_ratio=[1, 1], seed=0)
    batches = list(itertools.islice(iter(sampler), 40))
    for b in range(0, 40, 4):
        batch = batches[b:b + 4]
        assert all(i < 3 for i in batch[:2]) and all(3 <= i < 53 for i in batch[2:])
    labeled = [i for i in batches if i < 3]
    assert sorted(set(labeled)) == [0, 1, 2] and len(labeled) == 20  # cycled ~7 times
    again = list(itertools.islice(iter(MultiSourceSampler(dataset, 4, [1, 1], seed=0)), 40))
    assert again == batches


def test_multi_source_sampler_splits_ranks(monkeypatch):
    dataset = _concat(10, 10)
    seen = []
    for rank in range(2):
        monkeypatch.setattr(
            'mmcora.datasets.samplers.multi_source.get_dist_info', lambda rank=rank: (rank, 2))
        seen.append(
            list(itertools.islice(iter(MultiSourceSampler(dataset, 2, [1, 1], seed=3)), 10)))
    assert not set(i for i in seen[0] if i < 10) & set(i for i in seen[1] if i < 10)


def test_multi_source_sampler_errors():
    with pytest.raises(TypeError, match='ConcatDataset'):
        MultiSourceSampler(Sized(4), 2, [1, 1])
    with pytest.raises(ValueError, match='leaves a source without samples'):
        MultiSourceSampler(_concat(3, 3), 2, [9, 1])
    empty = _concat(3, 0)
    empty.datasets[1].ann_file = 'splits/1_30/unlabeled.txt'
    with pytest.raises(
            ValueError,
            match=r"sizes \[3, 0\]: source 1 \(Numbers, ann_file 'splits/1_30/unlabeled.txt'\) "
            'is empty'):
        MultiSourceSampler(empty, 2, [1, 1])


@pytest.fixture(scope='module')
def semi_batch(toy_city_root, toy_city_spec):
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIG)
    datasets = []
    for d in cfg.train_dataloader.dataset.datasets:
        d = dict(
            d,
            data_root=toy_city_root,
            toy_city=toy_city_spec,
            ann_file=d['ann_file'].replace('1_30', '1_4'))
        datasets.append(DATASETS.build(d))
    np.random.seed(0)
    torch.manual_seed(0)
    return cfg, pseudo_collate([datasets[0][0], datasets[0][1], datasets[1][0], datasets[1][1]])


def test_views_are_pixel_aligned_photometric_copies(semi_batch):
    _, batch = semi_batch
    unlabeled = batch['inputs'][2]
    assert unlabeled.shape[:2] == (3, 3) and max(unlabeled.shape[2:]) <= 128  # weak + 2 strong
    weak, strong = unlabeled[0].float(), unlabeled[1].float()
    # alignment: edges of the weak view are edges of the strong view (photometric only)
    edges_w = (weak.mean(0)[:, 1:] - weak.mean(0)[:, :-1]).abs() > 25
    edges_s = (strong.mean(0)[:, 1:] - strong.mean(0)[:, :-1]).abs() > 5
    assert (edges_w & edges_s).sum() > 0.5 * edges_w.sum()
    assert batch['data_samples'][2].branch == 'unsup' and batch['data_samples'][0].branch == 'sup'


def test_preprocessor_and_one_unimatch_step(semi_batch):
    cfg, batch = semi_batch
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(batch, True)
    assert data['inputs']['sup'].shape == (2, 3, 128, 128)
    assert data['inputs']['unsup'].shape == (3, 2, 3, 128, 128)
    losses = model(**data, mode='loss')
    expected = {'sup.loss_ce', 'sup.acc_seg', 'unsup.loss_s1', 'unsup.loss_s2', 'unsup.loss_fp'}
    assert set(losses) == expected
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_unimatch_is_an_mmseg_segmentor_with_named_weights(semi_batch):
    from mmseg.models.segmentors.base import BaseSegmentor
    cfg, batch = semi_batch
    model = MODELS.build(cfg.model)
    assert isinstance(model, BaseSegmentor)
    data = model.data_preprocessor(batch, True)
    with pytest.raises(RuntimeError, match='Invalid mode "bogus"'):
        model(**data, mode='bogus')  # used to fall through to the tensor mode silently
    # halving the strong-view weight halves exactly those two terms
    torch.manual_seed(0)
    full = model(**data, mode='loss')
    model.semi_train_cfg['strong_weight'] = 0.125
    torch.manual_seed(0)
    half = model(**data, mode='loss')
    for key in full:
        expected = full[key] / 2 if key in ('unsup.loss_s1', 'unsup.loss_s2') else full[key]
        torch.testing.assert_close(half[key], expected)
    old = dict(cfg.model, semi_train_cfg=dict(weights=(1.0, 0.0, 0.0, 0.0)))
    with pytest.raises(
            ValueError,
            match=r"unknown semi_train_cfg keys \['weights'\] \(the "
            r'weights are now sup_weight, strong_weight'):
        MODELS.build(old)


def test_masked_ce_ignores_padding_and_unconfident_pixels(semi_batch):
    cfg, _ = semi_batch
    model = MODELS.build(cfg.model)
    model.semi_train_cfg['conf_thresh'] = 0.9
    logits = torch.randn(1, 19, 4, 4, requires_grad=True)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    conf = torch.full((1, 4, 4), 0.95)
    conf[0, 0] = 0.5  # first row not confident
    ignore = torch.zeros(1, 4, 4, dtype=torch.long)
    ignore[0, :, 3] = 255  # last column padding
    loss = model.masked_ce(logits, target, conf, ignore)
    loss.backward()
    assert (logits.grad[0, :, 0] == 0).all() and (logits.grad[0, :, :, 3] == 0).all()
    per_pixel = torch.nn.functional.cross_entropy(logits, target, reduction='none')
    expected = per_pixel[0, 1:, :3].sum() / 12
    torch.testing.assert_close(loss, expected)


def test_cutmix_boxes_respect_the_configured_area(semi_batch):
    cfg, _ = semi_batch
    model = MODELS.build(cfg.model)
    model.semi_train_cfg['cutmix_prob'] = 1.0
    torch.manual_seed(0)
    boxes = model.cutmix_boxes(200, (64, 64), 'cpu')
    areas = boxes.float().mean(dim=(1, 2))
    assert (areas > 0).all() and areas.max() <= 0.4 + 1e-6 and areas.min() >= 0.01
    model.semi_train_cfg['cutmix_prob'] = 0.0
    assert not model.cutmix_boxes(10, (64, 64), 'cpu').any()


def test_supervised_checkpoint_warm_starts_unimatch(semi_batch, tmp_path):
    from mmengine.runner import load_checkpoint
    cfg, _ = semi_batch
    torch.manual_seed(1)
    supervised = MODELS.build(cfg.segmentor)
    path = str(tmp_path / 'supervised.pth')
    torch.save({'state_dict': supervised.state_dict()}, path)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, path, strict=True)
    for name, tensor in supervised.state_dict().items():
        assert torch.equal(model.segmentor.state_dict()[name], tensor), name
    # its own checkpoints load unchanged
    own = str(tmp_path / 'own.pth')
    torch.save({'state_dict': model.state_dict()}, own)
    again = MODELS.build(cfg.model)
    load_checkpoint(again, own, strict=True)
    assert all(
        torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                          model.state_dict().values()))


def test_gt_pseudo_label_diagnostic_uses_the_label_maps(semi_batch, toy_city_root, toy_city_spec):
    cfg, empty_batch = semi_batch
    gt_cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'unimatch',
                 'unimatch-gt-pseudo-labels_fcn-r18-tiny_toy-city-1-30.py'))
    unlabeled = DATASETS.build(
        dict(
            gt_cfg.train_dataloader.dataset.datasets[1],
            data_root=toy_city_root,
            toy_city=toy_city_spec,
            ann_file='splits/1_4/unlabeled.txt'))
    labeled = DATASETS.build(
        dict(
            cfg.train_dataloader.dataset.datasets[0],
            data_root=toy_city_root,
            toy_city=toy_city_spec,
            ann_file='splits/1_4/labeled.txt'))
    model = MODELS.build(gt_cfg.model)
    data = model.data_preprocessor(
        pseudo_collate([labeled[0], labeled[1], unlabeled[0], unlabeled[1]]), True)
    samples = data['data_samples']['unsup']
    label_maps = torch.stack([s.gt_sem_seg.data[0] for s in samples]).long()
    assert (label_maps != 255).any() and len(label_maps.unique()) > 3  # real classes
    logits = torch.randn(2, 19, *label_maps.shape[-2:])
    pseudo, conf, ignore = model.get_pseudo_labels(logits, samples)
    valid = label_maps != 255
    assert torch.equal(pseudo[valid], label_maps[valid]) and torch.equal(ignore, label_maps)
    assert (conf == 1).all()
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)
    # images of LoadEmptyAnnotations have no label map: refused, naming the image
    empty = model.data_preprocessor(empty_batch, True)['data_samples']['unsup']
    with pytest.raises(ValueError, match='came through LoadEmptyAnnotations'):
        model.get_pseudo_labels(logits, empty)
