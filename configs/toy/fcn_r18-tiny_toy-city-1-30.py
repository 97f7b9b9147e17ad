# Supervised FCN on the labeled 1/30 partition of the toy city: the embedded default job until
# the CORA pipeline lands. CPU: about a minute per 100 iterations.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
    '../_base_/models/fcn_r18-tiny.py',
    '../_base_/datasets/toy_city.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
data_preprocessor = dict(size=(128, 128))
model = dict(data_preprocessor=data_preprocessor)
optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
max_iters = 600
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False)
