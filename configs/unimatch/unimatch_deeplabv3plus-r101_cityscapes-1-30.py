# UniMatch (CVPR 2023) Cityscapes recipe on the 1/30 partition (100 labeled images):
# DeepLabV3+ ResNet-101 (output stride 16, ASPP 6/12/18), crop 801, SGD lr 0.005, poly,
# OHEM on labeled pixels, confidence threshold 0, sliding-window evaluation (801, stride 534),
# 4 GPUs x (2 labeled + 2 unlabeled). Iterations follow UniMatch's 240 epochs of unlabeled
# data: 1/30 86,160; 1/16 83,760; 1/8 78,000; 1/4 66,960.
#   tools/dist_train.sh configs/unimatch/unimatch_deeplabv3plus-r101_cityscapes-1-30.py 4
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/deeplabv3plus_r101-os16.py',
    '../_base_/datasets/cityscapes_semi.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
segmentor = {{_base_.model}}
model = dict(
    _delete_=True,
    type='UniMatch',
    segmentor=segmentor,
    data_preprocessor=dict(size=(801, 801)),  # the segmentor's, split by branch
    semi_train_cfg=dict(conf_thresh=0.0))
max_iters = 86160
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
