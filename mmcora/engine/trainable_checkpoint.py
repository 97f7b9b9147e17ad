"""Checkpoints that hold only what training changed; the frozen base comes from the config.

A CORA checkpoint of the paper's size held the frozen LLaVA-1.5-7B (bf16), SAM ViT-H and CLIP
next to the few trained parameters (LoRA, the added token rows, the mask decoder, the heads):
about 19 GB per file, read whole by every rank on ``--resume``. The frozen weights are the
base model's, which the config loads anyway (``model.mllm.pretrained``, ``model.sam.checkpoint``).

* :class:`TrainableCheckpointHook` (``before_save_checkpoint``) drops every frozen parameter
  (``requires_grad=False``) from the saved state dict and records their names and a
  fingerprint of their values in ``meta['trainable_only']``. Buffers stay: they are training
  state (the token bank, the stage-3 snapshot).
* :func:`restore_base_weights`, run by every mmcora checkpoint load (``CheckpointFitHook``
  for ``--resume``, ``load_from`` and ``tools/test.py``; ``load_model_checkpoint`` for the
  inferencer and the pseudo-label export), checks that the model built from the config has the
  same base weights (the fingerprint) and fills the omitted keys from it, so the strict key
  check and mmengine's load see a complete state dict. Other base weights are an error naming
  the file: the checkpoint's trained parts would sit on a base they were not trained with.

The fingerprint hashes each frozen tensor's name, shape, dtype and an evenly strided sample of
at most :data:`SAMPLE` values: cheap for 7B (a few thousand values per tensor leave the
device), and any other checkpoint of the base (another size, fine-tune or seed) differs in it.
"""
import hashlib
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

META_KEY = 'trainable_only'
SAMPLE = 4096  # values per tensor in the fingerprint


def frozen_parameter_names(model: torch.nn.Module) -> List[str]:
    """Names (state-dict keys) of the parameters that do not train.

    Args:
        model (torch.nn.Module): The unwrapped model.

    Returns:
        list[str]: Sorted names of parameters with ``requires_grad=False``.
    """
    return sorted(name for name, param in model.named_parameters() if not param.requires_grad)


def fingerprint(tensors: Dict[str, torch.Tensor], names: List[str]) -> str:
    """A hash of named tensors: each name, shape, dtype and a strided sample of its values.

    Args:
        tensors (dict[str, torch.Tensor]): A state dict.
        names (list[str]): The keys to hash, in this order.

    Returns:
        str: Hex SHA-256.
    """
    digest = hashlib.sha256()
    for name in names:
        tensor = tensors[name].detach()
        flat = tensor.reshape(-1)
        sample = flat[::max(1, flat.numel() // SAMPLE)][:SAMPLE].contiguous().cpu()
        digest.update(f'{name}{tuple(tensor.shape)}{tensor.dtype}'.encode())
        digest.update(sample.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def restore_base_weights(model: torch.nn.Module, checkpoint: dict, filename: str) -> dict:
    """Fill a trainable-only checkpoint's omitted base weights from ``model``, after checking
    that they are the weights it was trained on. Other checkpoints are returned unchanged.

    Args:
        model (torch.nn.Module): The model built from the config (unwrapped); its frozen
            weights come from the config's base checkpoints.
        checkpoint (dict): The loaded checkpoint; its ``state_dict`` is completed in place.
        filename (str): The checkpoint file, for the error.

    Returns:
        dict: ``checkpoint``.

    Raises:
        CheckpointMismatchError: The model lacks an omitted weight, or its base weights differ
            from those the checkpoint was trained on.
    """
    from .checkpoint_fit import CheckpointMismatchError  # the module that loads checkpoints
    meta = checkpoint.get('meta', {}).get(META_KEY) if isinstance(checkpoint, dict) else None
    if not meta:
        return checkpoint
    own = model.state_dict()
    names = list(meta['omitted'])
    absent = [name for name in names if name not in own]
    if absent:
        raise CheckpointMismatchError(
            f'{filename} holds only trained weights, and this {type(model).__name__} has no '
            f'{len(absent)} of the base weights it leaves out (first: {absent[0]}): was it made '
            'with another config?')
    if fingerprint(own, names) != meta['fingerprint']:
        raise CheckpointMismatchError(
            f'{filename} holds only trained weights, and the base weights of this model are not '
            f'the ones they were trained on ({len(names)} frozen tensors, fingerprint '
            f'{fingerprint(own, names)[:12]} here, {meta["fingerprint"][:12]} in the file): '
            'give the pretrained paths of the training config (model.mllm.pretrained, '
            'model.sam.checkpoint, ...)')
    state_dict = checkpoint.setdefault('state_dict', {})
    for name in names:
        state_dict.setdefault(name, own[name])
    return checkpoint


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Save checkpoints without the frozen parameters (see the module docstring).

    mmengine builds the full state dict on the CPU before this hook drops the frozen part,
    so a save still needs the model's size in host memory for a moment; the file, its
    writing and every later read hold the trained part only.

    Args:
        omit_frozen (bool): Leave the frozen parameters out. False saves everything, as
            mmengine alone does (``--cfg-options
            default_hooks.trainable_checkpoint.omit_frozen=False``; mmengine does not allow
            None for a default hook it does not know).
    """
    priority = 'VERY_LOW'  # after hooks that add to the checkpoint

    def __init__(self, omit_frozen: bool = True) -> None:
        self.omit_frozen = omit_frozen

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.omit_frozen:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        names = [n for n in frozen_parameter_names(model) if n in checkpoint['state_dict']]
        checkpoint.setdefault('meta', {})[META_KEY] = dict(
            omitted=names, fingerprint=fingerprint(checkpoint['state_dict'], names))
        for name in names:
            del checkpoint['state_dict'][name]
