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

The fingerprint of each frozen tensor hashes its shape, dtype and :data:`SAMPLE` values spread
evenly over it: cheap for 7B (a few thousand values per tensor leave the device), and another
base (another size, dtype, fine-tune, or random weights under another seed) differs in it,
except for changes that miss every sampled value. Frozen parameters that training changes
(Seg-Zero's reference model, synced from the policy) must not be omitted: the hook is for
models whose frozen parameters are the base's, as CORA's; for others the check refuses the
resume instead of silently restoring the base.
"""
import hashlib
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmseg.registry import HOOKS

META_KEY = 'trainable_only'
SAMPLE = 4096  # values per tensor in the fingerprint


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model a checkpoint's keys name: without DDP/FSDP wrappers and test-time augmentation
    (``tools/test.py --tta`` wraps it in ``SegTTAModel``), as mmengine's own loader unwraps it.

    Args:
        model (torch.nn.Module): The runner's model.

    Returns:
        torch.nn.Module: The innermost model.
    """
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def frozen_parameter_names(model: torch.nn.Module) -> List[str]:
    """Names (state-dict keys) of the parameters that do not train.

    Args:
        model (torch.nn.Module): The unwrapped model.

    Returns:
        list[str]: Sorted names of parameters with ``requires_grad=False``.
    """
    return sorted(name for name, param in model.named_parameters() if not param.requires_grad)


def fingerprints(tensors: Dict[str, torch.Tensor], names: List[str]) -> Dict[str, str]:
    """Per named tensor, a hash of its shape, dtype and :data:`SAMPLE` values spread evenly
    over it, first to last (all of it when smaller).

    Args:
        tensors (dict[str, torch.Tensor]): A state dict.
        names (list[str]): The keys to hash.

    Returns:
        dict[str, str]: Name to a 16-hex-digit SHA-256 prefix.
    """
    digests = {}
    for name in names:
        tensor = tensors[name].detach()
        flat = tensor.reshape(-1)
        if flat.numel() > SAMPLE:
            flat = flat[torch.linspace(0, flat.numel() - 1, SAMPLE, device=flat.device).long()]
        digest = hashlib.sha256(f'{tuple(tensor.shape)}{tensor.dtype}'.encode())
        digest.update(flat.contiguous().cpu().view(torch.uint8).numpy().tobytes())
        digests[name] = digest.hexdigest()[:16]
    return digests


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
    saved, here = meta['fingerprints'], fingerprints(own, names)
    differ = [name for name in names if here[name] != saved[name]]
    if differ:
        first = own[differ[0]]
        raise CheckpointMismatchError(
            f'{filename} holds only trained weights, and {len(differ)} of the {len(names)} '
            f'frozen base tensors of this model are not the ones they were trained on (first: '
            f'{differ[0]}, {tuple(first.shape)} {first.dtype} here): give the pretrained paths '
            'and dtypes of the training config (model.mllm.pretrained, model.sam.checkpoint, '
            'image_encoder_dtype, ...); a randomly initialised base (a tiny model without '
            'toy_pretrain) differs with the seed')
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
        model = unwrap_model(runner.model)
        names = [n for n in frozen_parameter_names(model) if n in checkpoint['state_dict']]
        checkpoint.setdefault('meta', {})[META_KEY] = dict(
            omitted=names, fingerprints=fingerprints(checkpoint['state_dict'], names))
        for name in names:
            del checkpoint['state_dict'][name]
