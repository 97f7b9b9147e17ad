# 2000-iteration SGD schedule of the toy-city segmentation configs (CPU-sized): long enough
# for the FCN to learn all 240 training images, so that label-count comparisons are fair.
_base_ = ['./toy_600.py']
max_iters = 2000
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=500))
randomness = dict(seed=0)
