# UniMatch on the toy city's 1/30 partition: the FCN, schedule and labeled images per step (4)
# of configs/toy/fcn_r18-tiny_toy-city-1-30.py, plus 4 unlabeled images per step.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/toy_2k.py',
    '../_base_/models/fcn_r18-tiny.py',
    '../_base_/datasets/toy_city_semi.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
segmentor = {{_base_.model}}
model = dict(
    _delete_=True,
    type='UniMatch',
    segmentor=segmentor,
    data_preprocessor=dict(size=(128, 128)),  # the segmentor's, split by branch
    # UniMatch's setting outside Cityscapes. Cityscapes' 0 was worse here: toy val mIoU 34.5
    # vs 41.4 after 600 iterations (a from-scratch net's early pseudo-labels are poor).
    semi_train_cfg=dict(conf_thresh=0.95))
# One torch thread: faster than a pool per core for these tiny models, and the numbers do
# not depend on the machine's core count (mmcora.engine.threads).
env_cfg = dict(cudnn_benchmark=False, torch_num_threads=1)
