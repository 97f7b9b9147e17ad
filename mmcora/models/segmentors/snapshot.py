"""A frozen copy of a model's trainable parameters, swapped in for no-grad passes.

CORA's K-1 consistency passes run "through a frozen LLM and decoder" (§3.2.1). The frozen
model shares everything frozen with the trained one (CLIP, SAM's image encoder, the base LLM
weights) and differs only in the trainable parts: the LoRA adapter, the token embeddings, the
[SEG] projector, SAM's mask decoder and the anchor encoder. :class:`ParameterSnapshot` keeps
copies of exactly those tensors as buffers (so checkpoints save them and ``--resume`` restores
them) and :meth:`ParameterSnapshot.swapped_in` puts them in place of the live parameters for
the duration of a ``no_grad`` block, without copying: the consistency passes use the same
modules, the same image encodings and one batch, never a second base model.
"""
import contextlib
from typing import Dict, Iterator, Sequence

import torch
import torch.nn as nn


def _buffer_name(parameter_name: str) -> str:
    return parameter_name.replace('.', '__')


class ParameterSnapshot(nn.Module):
    """Frozen copies of a module's parameters that require grad.

    Args:
        owner (nn.Module): The module whose trainable parameters are copied (names are relative to
            it).
        exclude (Sequence[str]): Parameter names left out (e.g. an untied LM head the passes never
            use).
    """

    def __init__(self, owner: nn.Module, exclude: Sequence[str] = ()) -> None:
        super().__init__()
        self.names = [
            n for n, p in owner.named_parameters() if p.requires_grad and n not in set(exclude)
        ]
        for name, param in owner.named_parameters():
            if name in self.names:
                self.register_buffer(_buffer_name(name), param.detach().clone())
        # whether take() has run: saved with the copies, so a resumed run does not retake
        self.register_buffer('taken', torch.zeros((), dtype=torch.bool))

    def copies(self) -> Dict[str, torch.Tensor]:
        return {n: getattr(self, _buffer_name(n)) for n in self.names}

    @property
    def num_bytes(self) -> int:
        """Memory of the copies."""
        return sum(t.numel() * t.element_size() for t in self.copies().values())

    @torch.no_grad()
    def take(self, owner: nn.Module) -> None:
        """Copy the owner's current values (the model as stage 3 starts)."""
        params = dict(owner.named_parameters())
        for name, copy in self.copies().items():
            copy.copy_(params[name])
        self.taken.fill_(True)

    @contextlib.contextmanager
    def swapped_in(self, owner: nn.Module) -> Iterator[None]:
        """Within the block, the owner computes with the frozen copies (no grad, eval mode)."""
        if not bool(self.taken):
            raise RuntimeError('the consistency snapshot has not been taken: stage 3 takes it '
                               'when it starts (CORAStagedTrainLoop), or call take()')
        params = dict(owner.named_parameters())
        live = {name: params[name].data for name in self.names}
        was_training = owner.training
        try:
            for name, copy in self.copies().items():
                params[name].data = copy
            owner.train(False)
            with torch.no_grad():
                yield
        finally:
            for name, data in live.items():
                params[name].data = data
            owner.train(was_training)
