"""timm's rule for configs: every Seg-Zero config builds (its paper-size models swapped for
the tiny ones of the same classes), takes one training step on its own pipeline and predicts."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

from mmcora.engine.stages import resolve_refs
from ..conftest import REPO

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'segzero', '*.py')))


@pytest.fixture(autouse=True)
def scope_and_thread():
    init_default_scope('mmseg')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shrink(model_cfg, qwen_dir, sam2_dir):
    """The config's model with the tiny reasoner and segmenter and short replies."""
    model_cfg.reasoner.update(pretrained=qwen_dir, dtype='float32', max_new_tokens=8)
    model_cfg.reasoner.pop('tiny', None)
    if model_cfg.segmenter.type == 'SAMPromptSegmenter':  # plumbing: no foundation cache
        model_cfg.segmenter.toy_pretrain = None
    else:
        model_cfg.segmenter.update(pretrained=sam2_dir, dtype='float32')
        model_cfg.segmenter.pop('tiny', None)
    model_cfg.test_cfg = dict(max_new_tokens=8)
    model_cfg.setdefault('train_cfg', {})['num_generations'] = 2
    return model_cfg


def toy_dataset(cfg, split, root, spec):
    """The config's own pipeline, on the small toy city's instruction data."""
    # named entries (dict(ref=...)) resolved as CORAStagedTrainLoop resolves them
    dataset = resolve_refs(cfg[f'{split}_dataloader'], cfg, f'{split}_dataloader')['dataset']
    kept = dict(
        type='ReasoningSegDataset', data_root=root, toy_city=spec, pipeline=dataset['pipeline'])
    if split == 'train':
        kept.update(
            ann_file='instructions/1_30_labeled.jsonl',
            build_instructions=dict(
                dataset='cityscapes', split='train', ann_file='splits/1_30/labeled.txt', seed=0),
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'))
    else:
        kept.update(
            ann_file='instructions/val.jsonl',
            test_mode=True,
            build_instructions=dict(
                dataset='cityscapes', split='val', ann_file='splits/val.txt', seed=0),
            data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'))
    return DATASETS.build(kept)


def test_every_config_is_listed():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'segzero_tiny_sft-600-grpo-100_toy-city-1-30.py' in names and len(names) == 5


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.basename(c) for c in CONFIGS])
def test_config_builds_steps_and_predicts(config, qwen_dir, sam2_dir, toy_city_root, toy_city_spec):
    cfg = Config.fromfile(config)
    model = MODELS.build(shrink(cfg.model, qwen_dir, sam2_dir))
    assert type(model).__name__ == 'SegZeroSegmentor'
    splits = ['test'] if 'train_dataloader' not in cfg else ['train', 'test']
    if 'train' in splits:
        batch = model.data_preprocessor(
            pseudo_collate([toy_dataset(cfg, 'train', toy_city_root, toy_city_spec)[0]]), True)
        for mode in ('sft', 'grpo'):
            model.train_cfg['mode'] = mode
            losses = model(**batch, mode='loss')
            total = sum(v for k, v in losses.items() if 'loss' in k)
            assert torch.isfinite(total)
            total.backward()
    model.eval()
    item = toy_dataset(cfg, 'test', toy_city_root, toy_city_spec)[0]
    out = model(**model.data_preprocessor(pseudo_collate([item])), mode='predict')[0]
    assert out.pred_masks.shape == (out.num_queries, *out.ori_shape)
    assert len(out.metainfo['pred_texts']) == out.num_queries
