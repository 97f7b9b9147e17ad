"""UniMatch configs: every shipped one builds and trains a step; UniMatch's OHEM loss."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmcora  # noqa: F401
from mmcora.models.losses import OhemCrossEntropyLoss
from ..conftest import REPO

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'unimatch', '*.py')))
CITYSCAPES = [c for c in CONFIGS if 'cityscapes' in c]
# UniMatch's 240 epochs over the unlabeled images, 4 GPUs x 2 unlabeled images per step.
CITYSCAPES_ITERS = {'1_30': 86160, '1_16': 83760, '1_8': 78000, '1_4': 66960}


def test_every_partition_has_a_cityscapes_config():
    assert sorted(osp.basename(c).split('-')[-2] + '_' + c.split('-')[-1][:-3]
                  for c in CITYSCAPES) == sorted(CITYSCAPES_ITERS)


@pytest.mark.parametrize('path', CITYSCAPES, ids=osp.basename)
def test_cityscapes_config_follows_unimatch_recipe(path):
    cfg = Config.fromfile(path)
    partition = '_'.join(osp.splitext(path)[0].split('-')[-2:])
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    assert labeled.ann_file == f'splits/{partition}/labeled.txt'
    assert unlabeled.ann_file == f'splits/{partition}/unlabeled.txt'
    assert cfg.train_cfg.max_iters == CITYSCAPES_ITERS[partition]
    assert cfg.param_scheduler[0].end == CITYSCAPES_ITERS[partition]
    assert cfg.model.semi_train_cfg.conf_thresh == 0.0
    segmentor = cfg.model.segmentor
    assert segmentor.backbone.depth == 101 and segmentor.decode_head.dilations == (1, 6, 12, 18)
    assert segmentor.decode_head.loss_decode.type == 'OhemCrossEntropyLoss'
    assert segmentor.test_cfg == dict(mode='slide', crop_size=(801, 801), stride=(534, 534))
    assert cfg.optim_wrapper.optimizer.lr == 0.005
    crops = [t.crop_size for t in labeled.pipeline + unlabeled.pipeline if t.type == 'RandomCrop']
    assert crops == [(801, 801), (801, 801)]


def _shrink(cfg: Config, root: str) -> Config:
    """The config on the toy city (a Cityscapes tree) at 64x64 crops, BN, no download."""
    cfg.model.segmentor.pretrained = None
    cfg.model.segmentor.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.segmentor.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.segmentor.decode_head.loss_decode.min_kept = 1000
    cfg.model.data_preprocessor.size = (64, 64)
    for dataset in cfg.train_dataloader.dataset.datasets:
        dataset.data_root = root
        for t in dataset.pipeline:
            if t.type == 'RandomResize':
                t.scale = (256, 128)
            elif t.type == 'RandomCrop':
                t.crop_size = (64, 64)
    cfg.val_dataloader.dataset.data_root = root
    return cfg


# The Cityscapes configs differ only in their lists and schedules (checked above): one of them
# runs, with the real R101 network.
@pytest.mark.parametrize('path', [c for c in CONFIGS if c not in CITYSCAPES[1:]], ids=osp.basename)
def test_config_trains_a_step_and_predicts(path, toy_city_root, toy_city_spec):
    init_default_scope('mmseg')
    cfg = Config.fromfile(path)
    if 'cityscapes' in path:
        cfg = _shrink(cfg, toy_city_root)
    else:
        for dataset in cfg.train_dataloader.dataset.datasets + [cfg.val_dataloader.dataset]:
            dataset.update(data_root=toy_city_root, toy_city=toy_city_spec)
    for dataset in cfg.train_dataloader.dataset.datasets:  # the small toy city's 1/4: 8 images
        dataset.ann_file = dataset.ann_file.replace('1_30', '1_4')
    np.random.seed(0)
    torch.manual_seed(0)
    labeled, unlabeled = (DATASETS.build(d) for d in cfg.train_dataloader.dataset.datasets)
    batch = pseudo_collate([labeled[0], labeled[1], unlabeled[0], unlabeled[1]])
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and set(k for k in losses if 'loss' in k) == {
        'sup.loss_ce', 'unsup.loss_s1', 'unsup.loss_s2', 'unsup.loss_fp'
    }
    total.backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not without_grad, without_grad
    # the validation pipeline and the configured test mode (sliding window for Cityscapes)
    model.eval()
    val = DATASETS.build(cfg.val_dataloader.dataset)
    with torch.no_grad():
        sample = model.val_step(pseudo_collate([val[0]]))[0]
    assert sample.pred_sem_seg.data.shape[-2:] == (128, 256)
    assert sample.seg_logits.data.shape[0] == 19


def test_ohem_keeps_hard_pixels_and_averages_over_them():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 6, 6, requires_grad=True)
    label = torch.randint(0, 5, (2, 6, 6))
    label[0, 0] = 255
    true_prob = logits.softmax(1).gather(1, label.clamp(max=4)[:, None])[:, 0].detach()
    valid = label != 255
    loss = OhemCrossEntropyLoss(thresh=0.7, min_kept=10)
    per_pixel = F.cross_entropy(logits, label, ignore_index=255, reduction='none')
    # enough hard pixels: those with p <= 0.7, mean over them
    hard = valid & (true_prob <= 0.7)
    assert 10 < hard.sum() < valid.sum()
    torch.testing.assert_close(loss(logits, label), per_pixel[hard].mean())
    # too few hard pixels under a low threshold: the min_kept least confident ones
    loss = OhemCrossEntropyLoss(thresh=0.01, min_kept=10)
    kth = true_prob[valid].sort().values[9]
    kept = valid & (true_prob <= kth)
    assert kept.sum() == 10
    torch.testing.assert_close(loss(logits, label), per_pixel[kept].mean())
    # fewer valid pixels than min_kept: all of them
    loss = OhemCrossEntropyLoss(thresh=0.01, min_kept=1000)
    torch.testing.assert_close(loss(logits, label), per_pixel[valid].mean())
    with pytest.raises(ValueError, match="remove the decode head's sampler"):
        loss(logits, label, weight=torch.ones(2, 6, 6))
    with pytest.raises(ValueError, match='thresh must be in'):
        OhemCrossEntropyLoss(thresh=0)
