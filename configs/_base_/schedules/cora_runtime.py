# Iteration-based schedule and hooks shared by the CORA configs.
max_iters = 10000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-5, betas=(0.9, 0.95), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=100,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=1000,
        max_keep_ckpts=3,
        save_best='reason/cIoU',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='ReasoningVisualizationHook'),
    # checkpoints hold the trained weights only (the frozen base comes from the config), and
    # any checkpoint must fit the model key for key (omit_frozen=False saves everything)
    trainable_checkpoint=dict(type='TrainableCheckpointHook'),
    checkpoint_fit=dict(type='CheckpointFitHook'))
