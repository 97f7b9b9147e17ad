"""tools/analysis/model_size.py: the meta-device plan counts what a real build holds."""
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config

from ..conftest import REPO, run_tool

CONFIG = osp.join(REPO, 'configs', 'cora', 'cityscapes_1-30.py')


@pytest.fixture(scope='module')
def llava_dir(tmp_path_factory):
    from mmcora.models.mllm import ensure_tiny_llava
    return ensure_tiny_llava(str(tmp_path_factory.mktemp('size') / 'tiny-llava'))


def _config(llava_dir):
    cfg = Config.fromfile(CONFIG)  # the paper's config: LoRA, token rows, bf16, frozen parts
    cfg.model.mllm.pretrained = llava_dir
    sam = {k: v for k, v in cfg.model.sam.items() if k not in ('model_type', 'checkpoint')}
    cfg.model.sam = dict(sam, tiny=dict(img_size=256))  # ViT-H's options, a tiny ViT
    return cfg


def test_meta_plan_equals_the_built_model(llava_dir):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
    from model_size import meta_model, plan
    cfg = _config(llava_dir)
    meta = meta_model(cfg)
    assert all(p.device.type == 'meta' for p in meta.parameters())
    init_default_scope('mmseg')
    real = MODELS.build(cfg.model)
    assert plan(meta, 4) == plan(real, 4)
    sizes = plan(real, 4)
    trainable = sum(p.numel() * p.element_size() for p in real.parameters() if p.requires_grad)
    assert sizes['trainable'] == trainable > 0
    assert sizes['checkpoint_trainable_only'] < sizes['checkpoint_full']
    assert sizes['fsdp'] < sizes['zero2'] <= sizes['ddp']
    assert plan(real, 1)['fsdp'] == sizes['ddp']  # one GPU: nothing to shard
    frozen = {p.dtype for n, p in real.named_parameters() if 'image_encoder' in n}
    assert frozen == {torch.bfloat16}  # the paper config keeps SAM's encoder in bf16


def test_the_tool_prints_the_plan(llava_dir):
    out = run_tool([
        sys.executable, 'tools/analysis/model_size.py', CONFIG, '--gpus', '2', '--cfg-options',
        f'model.mllm.pretrained={llava_dir}'
    ]).stdout
    full, small = map(
        float,
        re.search(r'checkpoint: full ([\d.]+) GB, trainable-only ([\d.]+) GB', out).groups())
    assert small < full and 'per GPU of 2' in out
    assert re.search(r'DDP [\d.]+ GB \| ZeRO-2 [\d.]+ GB \| FSDP [\d.]+ GB', out)
