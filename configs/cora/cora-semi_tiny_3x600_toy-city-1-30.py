# CORA's three stages (paper §3.3) with the tiny model on the toy city's 1/30 partition:
# 600 iterations of semantic + attribute instructions, 600 of conditional instructions, 600
# adding pseudo-labeled images (consistency-weighted pseudo-masks + token alignment).
# Needs the teacher's pseudo-labels in data/toy_city/pseudo/unimatch_1_30 (README main job).
_base_ = ['./toy-city_1-30_tiny.py', '../_base_/datasets/toy_city_semi_reasoning.py']
stage_iters = dict(semantic=600, conditional=600, unlabeled=600)
max_iters = sum(stage_iters.values())
model = dict(
    type='SemiCORASegmentor',
    loss_pseudo=dict(type='VarianceWeightedLoss', mapping='stability'),
    loss_token=dict(type='TokenContrastiveLoss', temperature=0.07),
    token_bank=dict(type='TokenBank', num_classes=19, size_per_class=32),
    unlabeled_weight=1.0)
train_dataloader = dict(_delete_=True, ref='semantic_dataloader')  # stage 1
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
    val_interval=300)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=50, end=max_iters),
]
default_hooks = dict(checkpoint=dict(interval=300))
custom_hooks = [
    dict(type='DataFilesCheckHook'),
    dict(type='TokenBankHook'),
    dict(type='RandomStateHook')
]  # exact --resume (LoRA dropout)
