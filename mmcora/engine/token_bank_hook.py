"""``TokenBankHook``: fill the model's token bank with every rank's labeled [SEG] tokens."""
from typing import Optional, Tuple

import torch
from mmengine.dist import all_gather, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


def gather_rows(tokens: torch.Tensor, classes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every rank's (N_r, D) tokens and (N_r,) classes in rank order.

    Ranks may hold different N_r (0 included): sizes are gathered first, rows padded to the
    largest and trimmed after the gather.
    """
    if get_world_size() == 1:
        return tokens, classes
    sizes = [int(n) for n in all_gather(torch.tensor([len(tokens)], device=tokens.device))]
    width = max(sizes)
    padded = tokens.new_zeros((width, tokens.shape[1]))
    padded[:len(tokens)] = tokens
    padded_classes = classes.new_full((width, ), -1)
    padded_classes[:len(classes)] = classes
    all_tokens = all_gather(padded)
    all_classes = all_gather(padded_classes)
    return (torch.cat([t[:n] for t, n in zip(all_tokens, sizes)]),
            torch.cat([c[:n] for c, n in zip(all_classes, sizes)]))


@HOOKS.register_module()
class TokenBankHook(Hook):
    """After each training iteration, push the labeled ``[SEG]`` tokens of all ranks.

    The model (``SemiCORASegmentor``) keeps the projected tokens of its last labeled queries
    (detached) and holds the bank in buffers, so checkpoints save the bank and ``--resume``
    restores it. The hook gathers the tokens across ranks and every rank pushes the same rows in
    the same order: all ranks hold the same bank after every iteration.
    """

    priority = 'NORMAL'

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if getattr(model, 'token_bank', None) is None:
            raise ValueError(f'TokenBankHook needs a model with a token bank (SemiCORASegmentor '
                             f'with loss_token), got {type(model).__name__} without one: '
                             'remove the hook or configure loss_token and token_bank')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        model = self._model(runner)
        bank = model.token_bank
        update = model.pop_bank_update()
        if update is None:  # every rank still takes part in the gather
            device = bank.tokens.device
            update = (torch.zeros((0, bank.tokens.shape[-1]),
                                  device=device), torch.zeros(0, dtype=torch.long, device=device))
        bank.push(*gather_rows(*update))
        # fraction of the bank's slots that hold a token
        runner.message_hub.update_scalar(
            'train/token_bank_filled',
            float(bank.filled.sum()) / (bank.num_classes * bank.size_per_class))
