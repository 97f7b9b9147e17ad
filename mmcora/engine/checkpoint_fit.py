"""Refuse a checkpoint that does not fit the model, naming the file, instead of a warning.

mmengine loads ``load_from``, ``--resume`` and ``tools/test.py``'s checkpoint with
``strict=False``: keys that do not match are listed in a log warning and the rest is loaded. A
checkpoint of another config (the teacher's FCN given to a CORA config, a LoRA of another rank,
a model with another number of classes) then trains on, or is evaluated as, a half-random model
and prints its numbers as if nothing were wrong. Here every key must match, with its shape.

* :func:`load_state_dict_checked` loads a state dict and raises
  :class:`CheckpointMismatchError` naming the file, the counts and the first keys at fault.
* :func:`load_model_checkpoint` reads a file (through mmengine's loaders, so URLs and the safe
  unpickler apply) and loads it checked: the inferencer and ``tools/export_pseudo_labels.py``.
* :class:`CheckpointFitHook` does the same inside a runner (``tools/train.py`` and
  ``tools/test.py`` register it): ``after_load_checkpoint`` runs after the file is read and
  before mmengine's own lenient load, which then copies the same weights again.
"""
import contextlib
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import torch
from mmengine.hooks import Hook
from mmengine.runner import find_latest_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import HOOKS

from .trainable_checkpoint import restore_base_weights, unwrap_model

SHOWN = 3  # keys named per kind of mismatch


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights are not the model's: another config made it."""


def state_dict_of(checkpoint: Any, filename: str) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint, with DDP's ``module.`` prefix removed as mmengine does.

    Args:
        checkpoint (Any): What ``torch.load`` returned: mmengine's dict with ``state_dict``
            or a bare state dict.
        filename (str): The file, for the error.

    Returns:
        dict[str, torch.Tensor]: Parameter and buffer names to tensors.

    Raises:
        CheckpointMismatchError: It holds no state dict.
    """
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(
            f'{filename} holds no state dict (a {type(checkpoint).__name__}): is it a checkpoint?')
    return {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}


def _first(keys: List[str]) -> str:
    shown = ', '.join(keys[:SHOWN])
    return shown + (', ...' if len(keys) > SHOWN else '')


def load_state_dict_checked(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                            filename: str) -> None:
    """Load ``state_dict`` into ``model`` and refuse any key or shape that does not match.

    Loading goes through ``model.load_state_dict``, so the model's own load hooks apply (UniMatch
    takes a supervised segmentor's keys). The weights that do match are loaded before the error:
    the caller stops, and nothing is written.

    Args:
        model (torch.nn.Module): The built model (unwrapped).
        state_dict (dict[str, torch.Tensor]): The weights, e.g. from :func:`state_dict_of`.
        filename (str): The checkpoint file, for the error.

    Raises:
        CheckpointMismatchError: Keys of the file have no place in the model, model keys are
            not in the file, or shapes differ; the message names the file, the model class, the
            counts and the first keys of each kind.
    """
    own = model.state_dict()
    shapes = [
        f'{key}: {tuple(value.shape)} in the file, {tuple(own[key].shape)} in the model'
        for key, value in state_dict.items() if key in own and value.shape != own[key].shape
    ]
    fitting = {k: v for k, v in state_dict.items() if k not in own or v.shape == own[k].shape}
    try:
        result = model.load_state_dict(fitting, strict=False)
    except RuntimeError as error:  # a shape a load hook's renamed key brought
        raise CheckpointMismatchError(f'{filename} does not fit this {type(model).__name__}: '
                                      f'{error}') from None
    unexpected = list(result.unexpected_keys)
    mismatched = {line.split(':')[0] for line in shapes}
    missing = [key for key in result.missing_keys if key not in mismatched]
    if not (unexpected or missing or shapes):
        return
    parts = []
    if unexpected:
        parts.append(f'{len(unexpected)} of its {len(state_dict)} weights are not in the '
                     f'model ({_first(unexpected)})')
    if missing:
        parts.append(f'{len(missing)} of the model\'s weights are not in it ({_first(missing)})')
    if shapes:
        parts.append(f'{len(shapes)} have another shape ({_first(shapes)})')
    raise CheckpointMismatchError(
        f'{filename} does not fit this {type(model).__name__}: {"; ".join(parts)}. Was it made '
        'with another config? Give the config it was trained with.')


def load_model_checkpoint(model: torch.nn.Module,
                          filename: str,
                          map_location: Union[str, Callable, None] = 'cpu') -> dict:
    """Read a checkpoint file and load it into ``model``, every key and shape checked.

    Args:
        model (torch.nn.Module): The built model (a DDP wrapper is unwrapped).
        filename (str): A path or URL that mmengine's checkpoint loaders read.
        map_location (str | Callable | None): As ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint as read (``meta`` and all).

    Raises:
        CheckpointMismatchError: See :func:`load_state_dict_checked`.
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    model = unwrap_model(model)
    restore_base_weights(model, checkpoint, filename)  # a trainable-only checkpoint
    load_state_dict_checked(model, state_dict_of(checkpoint, filename), filename)
    return checkpoint


@contextlib.contextmanager
def full_state_dict(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The model whose ``state_dict`` / ``load_state_dict`` speak in whole, unsharded tensors.

    A DDP (or other) wrapper is unwrapped. An FSDP model (``FlexibleRunner`` with
    ``FSDPStrategy``) stays wrapped, under ``FULL_STATE_DICT`` on every rank (offloaded to the
    CPU): its inner module's parameters are flat shards, whose shapes no checkpoint has.

    Args:
        model (torch.nn.Module): The runner's model.
    """
    from torch.distributed.fsdp import FullStateDictConfig
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import StateDictType
    if not isinstance(model, FSDP):
        yield unwrap_model(model)
        return
    with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT,
                              FullStateDictConfig(offload_to_cpu=True, rank0_only=False)):
        yield model


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Check ``load_from`` / ``--resume`` checkpoints against the model before training or testing.

    mmengine calls ``after_load_checkpoint`` with the checkpoint read and not yet loaded; the
    hook loads it checked (:func:`load_state_dict_checked`), so a checkpoint of another config
    stops the run before its first iteration, with the file named. A trainable-only checkpoint
    (:class:`TrainableCheckpointHook`) gets its base weights from the model first, checked.
    mmengine's lenient load that follows copies the same weights once more (no second read of
    the file).
    """
    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        filename: Optional[str] = runner._load_from
        if filename is None:  # --resume without a path: mmengine took the newest one
            filename = find_latest_checkpoint(runner.work_dir) or 'the resumed checkpoint'
        with full_state_dict(runner.model) as model:
            # a trainable-only checkpoint: the base weights checked, then filled in for mmengine
            restore_base_weights(model, checkpoint, filename)
            load_state_dict_checked(model, state_dict_of(checkpoint, filename), filename)


def register_checkpoint_fit(runner) -> None:
    """Add :class:`CheckpointFitHook` to a built runner unless its config already has it.

    Args:
        runner (mmengine.runner.Runner): The runner that ``tools/train.py`` or ``tools/test.py``
            built.
    """
    if not any(isinstance(hook, CheckpointFitHook) for hook in runner.hooks):
        runner.register_hook(CheckpointFitHook())
