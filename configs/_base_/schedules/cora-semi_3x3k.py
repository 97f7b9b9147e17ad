# CORA's three stages (paper §3.3) at the paper's size: 3 x 3000 iterations (equal lengths; the
# paper does not give the number), AdamW 2e-5 with warm-up and linear decay over all three.
# The data of each stage are named entries of the dataset config (datasets/cora_stages.py).
# A stage of length 0 is skipped: train_cfg.stages.1.iters=0 drops CVI.
_base_ = ['./cora_runtime.py']
stage_iters = dict(semantic=3000, conditional=3000, unlabeled=3000)
max_iters = sum(stage_iters.values())
train_cfg = dict(
    _delete_=True,
    type='CORAStagedTrainLoop',
    stages=[
        dict(name='semantic', iters=stage_iters['semantic']),  # train_dataloader
        dict(
            name='conditional',
            iters=stage_iters['conditional'],
            dataloader='conditional_dataloader'),
        dict(name='unlabeled', iters=stage_iters['unlabeled'], dataloader='unlabeled_dataloader'),
    ],
    val_interval=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=100,
        end=max_iters),
]
