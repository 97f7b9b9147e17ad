"""``RandomStateHook``: checkpoints carry the main process's random states, so a resumed run
draws what the uninterrupted run would have drawn (LoRA dropout, query sampling)."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


def random_states() -> dict:
    """The main process's random states, as tensors and numbers only (checkpoints load with
    ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = dict(
        python=random.getstate(),
        numpy=(name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    random.setstate(states['python'])
    name, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random states with each checkpoint; restore them on resume.

    mmengine reseeds on start and advances the dataloader past the trained iterations, which
    replays the data exactly when the pipeline runs in worker processes (each worker is seeded
    at creation). The main process's generators (dropout, anything the model draws) are not
    replayed: this hook saves them in the checkpoint (``random_state``) and restores them just
    before the first iteration after ``--resume``, after the dataloader has been rebuilt and
    advanced (which draws too). With ``num_workers=0`` the pipeline's draws happen in the main
    process while the data is advanced and are not restored exactly.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = random_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('random_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            set_random_states(self._pending)
            self._pending = None
