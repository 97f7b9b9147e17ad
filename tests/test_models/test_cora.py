"""Contract tests over every CORA config: build, one CPU training step, gradient routing."""
import glob
import math
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmcora  # noqa: F401
from ..conftest import REPO

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'cora', '*.py')))
# What trains in CORA; everything else (LLM and CLIP weights, SAM encoders, IoU head) is frozen.
TRAINABLE = re.compile(r'(lora_[AB]|projector\.|anchor_encoder\.|sam\.mask_decoder\.'
                       r'|embed_tokens\.weight|lm_head\.weight)')
NEVER_TRAINABLE = re.compile(r'(vision_tower|multi_modal_projector|sam\.image_encoder'
                             r'|sam\.prompt_encoder|iou_prediction_head)')
SAM_SIZE, CLIP_SIZE = 256, 56


def shrink(model_cfg: Config, llava_dir: str, dtype: str = 'float32') -> Config:
    """The config's model at test size: tiny LLaVA and SAM, every other setting kept."""
    model_cfg = model_cfg.copy()
    # random tiny weights: plumbing needs no foundation cache
    model_cfg.mllm.update(pretrained=llava_dir, tiny=dict(), toy_pretrain=None, dtype=dtype)
    kept = {  # the config's SAM options (image_encoder_dtype, ...) on the tiny architecture
        k: v
        for k, v in model_cfg.sam.items()
        if k not in ('type', 'model_type', 'checkpoint', 'tiny', 'toy_pretrain')
    }
    model_cfg.sam = dict(type='SAMWrapper', tiny=dict(img_size=SAM_SIZE), **kept)
    return model_cfg


def toy_reasoning_dataset(root: str, sam_size: int, clip_size: int, num_queries: int):
    """The toy city's 1/4 labeled images with their instructions, at the given input sizes."""
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(
            type='ReasoningSegDataset',
            data_root=root,
            ann_file='instructions/1_4_labeled.jsonl',
            build_instructions=dict(
                dataset='cityscapes', split='train', ann_file='splits/1_4/labeled.txt'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='SampleQueries', num_queries=num_queries),
                dict(type='LoadReasoningAnnotations'),
                dict(type='SAMResize', size=sam_size),
                dict(type='CLIPInputs', size=clip_size),
                dict(type='PackReasoningInputs')
            ]))


@pytest.fixture(scope='module')
def toy_reasoning(toy_city_root):
    return toy_reasoning_dataset(toy_city_root, SAM_SIZE, CLIP_SIZE, num_queries=4)


@pytest.fixture(scope='module')
def llava_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp('models') / 'tiny-llava')


def _batch_with_every_type(dataset, count: int = 2):
    """``count`` images whose queries include a conditional one (so anchors are exercised)."""
    np.random.seed(0)
    items = []
    for index in range(len(dataset)):
        item = dataset[index]
        if any(q['type'] == 'conditional' for q in item['data_samples'].queries):
            items.append(item)
        if len(items) == count:
            return pseudo_collate(items)
    raise AssertionError('no conditional queries in the toy data')


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.basename(c) for c in CONFIGS])
def test_one_training_step_routes_gradients(config, toy_reasoning, llava_dir):
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = MODELS.build(shrink(cfg.model, llava_dir))
    encoder_dtype = getattr(torch, cfg.model.sam.get('image_encoder_dtype') or 'float32')
    assert model.sam.image_encoder.patch_embed.proj.weight.dtype == encoder_dtype
    model.train()
    data = model.data_preprocessor(_batch_with_every_type(toy_reasoning), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_ce', 'loss_mask_bce', 'loss_mask_dice'}
    assert all(math.isfinite(v.item()) for v in losses.values())
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert TRAINABLE.search(name) and not NEVER_TRAINABLE.search(name), name
            assert param.grad is not None, f'{name} is trainable but got no gradient'
            assert torch.isfinite(param.grad).all(), name
        else:
            assert param.grad is None, name
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for group in ('lora_A', 'lora_B', 'projector.', 'anchor_encoder.mask_proj',
                  'anchor_encoder.box_proj', 'sam.mask_decoder.', 'embed_tokens', 'lm_head'):
        assert any(group in n for n in trainable), f'nothing of {group} trains'
    # the anchor encoder learned from this step: its gradient is not all zero
    assert model.anchor_encoder.box_proj.weight.grad.abs().sum() > 0


def test_bfloat16_language_model_step(toy_reasoning, llava_dir):
    # the 7B configs run the LLM in bf16; trainable parameters stay float32
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'cora', 'cityscapes_1-30.py'))
    model = MODELS.build(shrink(cfg.model, llava_dir, dtype='bfloat16'))
    losses = model(
        **model.data_preprocessor(_batch_with_every_type(toy_reasoning), True), mode='loss')
    assert all(math.isfinite(v.item()) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters()
               if p.requires_grad)


@pytest.mark.parametrize('config', CONFIGS, ids=[osp.basename(c) for c in CONFIGS])
def test_predict_both_modes(config, toy_reasoning, llava_dir):
    cfg = Config.fromfile(config)
    model = MODELS.build(shrink(cfg.model, llava_dir)).eval()
    batch = _batch_with_every_type(toy_reasoning)
    for mode in ('teacher_forcing', 'generate'):
        model.test_cfg['mode'] = mode
        with torch.no_grad():
            samples = model(**model.data_preprocessor(batch, False), mode='predict')
        for sample in samples:
            assert sample.pred_masks.dtype == torch.bool
            assert sample.pred_masks.shape == sample.gt_masks.shape
            assert len(sample.pred_texts) == sample.num_queries


def test_unknown_mode_raises(toy_reasoning, llava_dir):
    model = MODELS.build(shrink(Config.fromfile(CONFIGS[0]).model, llava_dir))
    batch = model.data_preprocessor(_batch_with_every_type(toy_reasoning), False)
    with pytest.raises(ValueError, match="mode must be loss, predict or tensor, got 'bogus'"):
        model(**batch, mode='bogus')


def test_loss_with_no_queries_is_zero_with_graph(toy_reasoning, llava_dir):
    model = MODELS.build(shrink(Config.fromfile(CONFIGS[0]).model, llava_dir))
    batch = pseudo_collate([toy_reasoning[0]])
    batch['data_samples'][0].set_metainfo(dict(queries=[]))
    batch['data_samples'][0].gt_masks = batch['data_samples'][0].gt_masks[:0]
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    total = sum(losses.values())
    assert total.item() == 0 and total.requires_grad


def test_heads_come_from_config_with_sizes_from_the_built_parts(llava_dir):
    init_default_scope('mmseg')
    cfg = shrink(Config.fromfile(CONFIGS[0]).model, llava_dir)
    model = MODELS.build(cfg)
    first = model.projector.layers[0]
    assert (first.in_features, model.projector.layers[-1].out_features) == (model.mllm.hidden_size,
                                                                            model.sam.prompt_dim)
    assert model.anchor_encoder.mask_proj[0].in_features == model.mllm.vision_hidden_size
    cfg.anchor_encoder = None
    assert MODELS.build(cfg).anchor_encoder is None
    cfg.projector = dict(type='SegTokenProjector', in_dim=model.mllm.hidden_size)  # the same
    assert MODELS.build(cfg).projector.layers[0].in_features == model.mllm.hidden_size
    cfg.projector = dict(type='SegTokenProjector', in_dim=7)  # failed at the first forward
    with pytest.raises(
            ValueError,
            match=rf'model\.projector\.in_dim is 7, but the built model needs '
            rf'{model.mllm.hidden_size}: leave it out'):
        MODELS.build(cfg)
