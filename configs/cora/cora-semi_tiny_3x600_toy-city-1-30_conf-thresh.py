# Ablation (Table 4's baseline for unlabeled data): stage 3 with confidence-thresholded
# pseudo-labels (teacher confidence >= 0.95), no output-consistency weights, no token alignment.
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
model = dict(
    loss_pseudo=dict(mapping='confidence', conf_thresh=0.95), loss_token=None, token_bank=None)
custom_hooks = [dict(type='DataFilesCheckHook'), dict(type='RandomStateHook')]
