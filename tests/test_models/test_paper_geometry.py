"""Contract test of every paper-size CORA config at the real geometry, tiny widths.

The models keep everything a 7B user's run depends on but the widths and depths: LLaVA-1.5's
336 px CLIP input (patch 14: 576 image tokens), its prompt template, a LLaMA-style SentencePiece
tokenizer (dummy prefix, byte fallback) loaded as llava-hf's is, the config's own ``max_length``,
tokenization, LoRA and packing; SAM at 1024 px (patch 16: a 64 x 64 embedding grid) with ViT-H's
14-token attention windows. Each config gets one training step (finite losses, every trainable
part reached) and one teacher-forced prediction.
"""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

import mmcora  # noqa: F401
from mmcora.engine.stages import resolve_refs
from .test_cora import CONFIGS, TRAINABLE, _batch_with_every_type, toy_reasoning_dataset

PAPER_CONFIGS = [c for c in CONFIGS if 'tiny' not in osp.basename(c)]
CLIP_SIZE, SAM_SIZE = 336, 1024  # LLaVA-1.5's and SAM's input sizes


def _geometry(cfg: Config):
    """The SAM and CLIP input sizes of a config's train (or test) pipeline."""
    name = 'train_dataloader' if cfg.get('train_dataloader') else 'test_dataloader'
    dataset = resolve_refs(cfg[name], cfg, name)['dataset']
    while 'datasets' in dataset:  # a ConcatDataset of labeled and pseudo-labeled images
        dataset = dataset['datasets'][0]
    sizes = {t['type']: t.get('size') for t in dataset['pipeline']}
    return sizes['SAMResize'], sizes['CLIPInputs']


@pytest.fixture(scope='module')
def llava_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('models') / 'llava-336-llama')


@pytest.fixture(scope='module')
def batch(toy_city_root):
    # one image with a conditional query (its anchor), at the real input sizes
    return _batch_with_every_type(
        toy_reasoning_dataset(toy_city_root, SAM_SIZE, CLIP_SIZE, num_queries=3), count=1)


def _real_geometry(model_cfg: Config, llava_dir: str) -> Config:
    """The config's model with tiny widths at the real geometry (float32 on CPU)."""
    model_cfg = model_cfg.copy()
    model_cfg.mllm.update(
        pretrained=llava_dir,
        tiny=dict(tokenizer='llama', image_size=CLIP_SIZE, patch_size=14),
        toy_pretrain=None,
        dtype='float32')
    kept = {
        k: v
        for k, v in model_cfg.sam.items()
        if k not in ('type', 'model_type', 'checkpoint', 'tiny', 'toy_pretrain')
    }
    model_cfg.sam = dict(type='SAMWrapper', tiny=dict(img_size=SAM_SIZE, window_size=14), **kept)
    return model_cfg


@pytest.mark.parametrize('config', PAPER_CONFIGS, ids=[osp.basename(c) for c in PAPER_CONFIGS])
def test_paper_config_at_real_geometry(config, batch, llava_dir):
    cfg = Config.fromfile(config)
    assert _geometry(cfg) == (SAM_SIZE, CLIP_SIZE)
    torch.manual_seed(0)
    model = MODELS.build(_real_geometry(cfg.model, llava_dir))
    mllm = model.mllm
    assert mllm.num_image_tokens == 576 and mllm.tokenization == 'conversation'
    assert len(mllm.prefix_ids('cpu')) > 600 and mllm.max_length >= 2048
    assert model.sam.image_encoder.img_size == SAM_SIZE
    # the answer loss starts right after 'ASSISTANT:', as in LLaVA's template, and holds [SEG]
    sample = batch['data_samples'][0]
    tokens = mllm.tokenize([q['text'] for q in sample.queries],
                           [q['answer'] for q in sample.queries], 'cpu')
    for row, labels in zip(tokens.ids.tolist(), tokens.labels.tolist()):
        first = next(i for i, label in enumerate(labels) if label != -100)
        assert mllm.tokenizer.convert_ids_to_tokens(row[first - 1]) == ':'
        assert mllm.seg_token_id in labels[first:]
    if cfg.get('train_dataloader') is not None:
        model.train()
        losses = model(**model.data_preprocessor(batch, True), mode='loss')
        losses = {k: v for k, v in losses.items() if k.startswith('loss')}
        assert losses and all(math.isfinite(v.item()) for v in losses.values())
        sum(losses.values()).backward()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        assert all(TRAINABLE.search(n) for n in trainable)
        for group in ('lora_B', 'projector.', 'sam.mask_decoder.', 'embed_tokens', 'lm_head'):
            assert any(group in n and p.grad is not None and p.grad.abs().sum() > 0
                       for n, p in trainable.items()), f'nothing of {group} learned'
    model.eval()
    model.test_cfg['mode'] = 'teacher_forcing'
    with torch.no_grad():
        sample, = model(**model.data_preprocessor(batch, False), mode='predict')
    assert sample.pred_masks.shape == sample.gt_masks.shape
    assert sample.pred_masks.dtype == torch.bool
