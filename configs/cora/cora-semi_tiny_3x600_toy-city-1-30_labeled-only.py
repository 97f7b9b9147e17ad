# Ablation: stages 1 and 2 as in full CORA, then 600 more iterations on the labeled
# instructions only (no unlabeled image): the same total iterations without stage 3's data.
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
model = dict(loss_token=None, token_bank=None)
train_cfg = dict(stages=[
    dict(name='semantic', iters=600),
    dict(name='conditional', iters=600, dataloader='conditional_dataloader'),
    dict(name='labeled', iters=600, dataloader='labeled_dataloader'),
])
custom_hooks = [dict(type='DataFilesCheckHook'), dict(type='RandomStateHook')]
