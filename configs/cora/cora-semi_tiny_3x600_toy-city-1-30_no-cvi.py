# Ablation without conditional visual instructions (CVI): stage 2 has length 0 and stage 1
# takes its iterations (equal total), stage 3 as in full CORA. The anchor encoder never trains.
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
train_cfg = dict(stages=[
    dict(name='semantic', iters=1200),
    dict(name='conditional', iters=0),
    dict(name='unlabeled', iters=600, dataloader='unlabeled_dataloader'),
])
