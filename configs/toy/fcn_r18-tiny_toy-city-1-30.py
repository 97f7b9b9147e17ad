# Supervised FCN on the labeled 1/30 partition of the toy city: an mmseg sanity job and the
# supervised-only baseline of configs/unimatch/unimatch_fcn-r18-tiny_toy-city-1-30.py.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/toy_2k.py',
    '../_base_/models/fcn_r18-tiny.py',
    '../_base_/datasets/toy_city.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
data_preprocessor = dict(size=(128, 128))
model = dict(data_preprocessor=data_preprocessor)
# One torch thread: faster than a pool per core for these tiny models, and the numbers do
# not depend on the machine's core count (mmcora.engine.threads).
env_cfg = dict(cudnn_benchmark=False, torch_num_threads=1)
