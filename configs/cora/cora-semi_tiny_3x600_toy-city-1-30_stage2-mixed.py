# Diagnostic, not in the paper: stage 2 trains on every labeled instruction type (semantic,
# attribute and conditional) instead of the conditional ones only, stages 1 and 3 as in full
# CORA, equal total iterations. It tells whether the drop of the all-type val cIoU after the
# paper's conditional-only stage 2 (39.5 -> 13.5 in the main job) costs anything at the end.
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
train_cfg = dict(stages=[
    dict(name='semantic', iters=600),
    dict(name='conditional', iters=600, dataloader='labeled_dataloader'),
    dict(name='unlabeled', iters=600, dataloader='unlabeled_dataloader'),
])
