"""Trainable-only checkpoints: the frozen base is left out on save and restored, checked, on
load (TrainableCheckpointHook, restore_base_weights)."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner.checkpoint import weights_to_cpu

from mmcora.engine import CheckpointMismatchError, TrainableCheckpointHook, load_model_checkpoint


def _save_trainable_only(model, path):
    """What runner.save_checkpoint writes with the hook (the hook sees the CPU state dict)."""
    checkpoint = dict(meta=dict(iter=4), state_dict=weights_to_cpu(model.state_dict()))
    TrainableCheckpointHook().before_save_checkpoint(SimpleNamespace(model=model), checkpoint)
    torch.save(checkpoint, path)
    return checkpoint


def test_frozen_weights_are_left_out_and_restored(inferencer, tmp_path):
    model = copy.deepcopy(inferencer.model)
    with torch.no_grad():  # "training": change every trainable weight
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param))
    full = tmp_path / 'full.pth'
    torch.save(dict(meta=dict(), state_dict=weights_to_cpu(model.state_dict())), full)
    small = tmp_path / 'trainable.pth'
    saved = _save_trainable_only(model, small)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert set(saved['meta']['trainable_only']['omitted']) == frozen
    assert frozen and not frozen & set(saved['state_dict'])
    assert any('sam.image_encoder' in n for n in frozen) and all(
        n in saved['state_dict'] for n, _ in model.named_buffers() if n in model.state_dict())
    assert small.stat().st_size < full.stat().st_size / 2
    for path in (full, small):  # a fresh build of the config takes both to the same weights
        fresh = copy.deepcopy(inferencer.model)
        load_model_checkpoint(fresh, str(path))
        for name, value in model.state_dict().items():
            assert torch.equal(fresh.state_dict()[name], value), (path.name, name)


def test_other_base_weights_are_refused(inferencer, tmp_path):
    model = copy.deepcopy(inferencer.model)
    path = tmp_path / 'iter_600.pth'
    _save_trainable_only(model, path)
    other_base = copy.deepcopy(inferencer.model)
    with torch.no_grad():  # e.g. another SAM checkpoint under the same config
        other_base.sam.image_encoder.patch_embed.proj.weight.mul_(1.5)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'iter_600\.pth holds only trained weights, and 1 of the \d+ frozen base '
            r'tensors of this model are not the ones they were trained on \(first: '
            r'sam\.image_encoder\.patch_embed\.proj\.weight, .*model\.mllm\.pretrained'):
        load_model_checkpoint(other_base, str(path))
