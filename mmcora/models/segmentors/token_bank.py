"""Per-class FIFO of projected ``[SEG]`` tokens of labeled queries (CORA §3.2.2)."""
from typing import Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS


@MODELS.register_module()
class TokenBank(nn.Module):
    """A FIFO of ``size_per_class`` tokens per class, held in buffers.

    Buffers go into checkpoints with the model, so ``--resume`` restores the bank. The bank is
    filled by ``TokenBankHook`` after each iteration with the tokens of every rank, in rank
    order, so that all ranks hold the same bank.

    Args:
        num_classes (int): Classes of the data set (class ids index the bank).
        dim (int): Token dimension (filled with SAM's prompt size by the segmentor).
        size_per_class (int): Tokens kept per class (the oldest are replaced first).
    """

    def __init__(self, num_classes: int, dim: int, size_per_class: int = 32) -> None:
        super().__init__()
        if num_classes < 1 or size_per_class < 1:
            raise ValueError(f'num_classes ({num_classes}) and size_per_class '
                             f'({size_per_class}) must be positive')
        self.num_classes, self.size_per_class = num_classes, size_per_class
        self.register_buffer('tokens', torch.zeros((num_classes, size_per_class, dim)))
        self.register_buffer('filled', torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer('next_slot', torch.zeros(num_classes, dtype=torch.long))

    @torch.no_grad()
    def push(self, tokens: torch.Tensor, classes: torch.Tensor) -> None:
        """Append (N, D) tokens of (N,) classes in order, replacing each class's oldest.

        Raises:
            ValueError: A class id outside ``[0, num_classes)``.
        """
        if len(classes) and (int(classes.min()) < 0 or int(classes.max()) >= self.num_classes):
            raise ValueError(f'token bank of {self.num_classes} classes got class ids '
                             f'{sorted(set(classes.tolist()))}')
        for token, c in zip(tokens.to(self.tokens), classes.tolist()):
            self.tokens[c, self.next_slot[c]] = token
            self.next_slot[c] = (self.next_slot[c] + 1) % self.size_per_class
            self.filled[c] = torch.clamp(self.filled[c] + 1, max=self.size_per_class)

    def contents(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The stored tokens (M, D) and their classes (M,)."""
        slots = torch.arange(self.size_per_class, device=self.tokens.device)
        held = slots.view(1, -1) < self.filled.view(-1, 1)  # (C, S)
        classes = torch.arange(self.num_classes, device=self.tokens.device)
        return self.tokens[held], classes.view(-1, 1).expand_as(held)[held]
