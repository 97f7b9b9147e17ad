# Seg-Zero on the toy city (1/30: 8 labeled images), tiny Qwen2.5-VL + tiny SAM 2:
# a supervised warm start on the answer format, then GRPO on the rewards alone.
# The warm start is a toy necessity, not part of Seg-Zero: the real reasoner is
# instruction-tuned and samples the <think>/<answer> JSON format from its first step, while
# a random-weight one never does, so every reward and every advantage would be 0. Its
# replies are the targets' JSON with a one-line reasoning (model.train_cfg.think).
#   python tools/train.py configs/segzero/segzero_tiny_sft-300-grpo-200_toy-city-1-30.py
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/segzero_tiny.py',
    '../_base_/datasets/toy_city_segzero.py',
    '../_base_/schedules/segzero_grpo.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
sft_iters, grpo_iters = 300, 200
max_iters = sft_iters + grpo_iters
train_cfg = dict(
    _delete_=True,
    type='CORAStagedTrainLoop',
    stages=[dict(name='sft', iters=sft_iters),
            dict(name='grpo', iters=grpo_iters)],
    max_iters=max_iters,
    val_interval=max_iters,
    val_at_stage_ends=True)
model = dict(train_cfg=dict(mode='sft'))
# Random tiny weights learn at 1e-3, not at Seg-Zero's 1e-6 for a pretrained 3B; GRPO then
# runs 20 times lower.
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(
        type='MultiStepLR',
        milestones=[sft_iters],
        gamma=0.05,
        by_epoch=False,
        begin=0,
        end=max_iters),
]
default_hooks = dict(
    checkpoint=dict(interval=100, max_keep_ckpts=2, save_best=None), logger=dict(interval=10))
# One torch thread: faster than a pool per core for tiny models (mmcora.engine.threads).
env_cfg = dict(cudnn_benchmark=False, torch_num_threads=1)
randomness = dict(seed=0)
