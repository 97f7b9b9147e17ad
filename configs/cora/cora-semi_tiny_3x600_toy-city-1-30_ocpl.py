# Ablation: stage 3 with output consistency-driven pseudo-labeling (OCPL) only, no token
# alignment (TFCA off).
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
model = dict(loss_token=None, token_bank=None)
custom_hooks = [dict(type='DataFilesCheckHook'), dict(type='RandomStateHook')]
