"""A test-only hook: after each iteration, each rank writes a digest of its token bank."""
import hashlib
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class TokenBankProbeHook(Hook):
    priority = 'LOWEST'  # after TokenBankHook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        bank = model.token_bank
        digest = hashlib.sha256(bank.tokens.cpu().numpy().tobytes() +
                                bank.filled.cpu().numpy().tobytes()).hexdigest()
        path = osp.join(runner.work_dir, f'bank_rank{get_rank()}.jsonl')
        with open(path, 'a') as f:
            f.write(
                json.dumps(
                    dict(iter=runner.iter + 1, digest=digest, filled=int(bank.filled.sum()))) +
                '\n')
