# Seg-Zero on the toy city (1/30: 8 labeled images), tiny Qwen2.5-VL + the toy SAM:
# a supervised warm start on the answer format, then GRPO on the rewards alone.
# The warm start is a toy necessity, not part of Seg-Zero: the real reasoner is
# instruction-tuned and samples the <think>/<answer> JSON format from its first step, while
# a random-weight one never does, so every reward and every advantage would be 0. Its
# replies are the targets' JSON with a one-line reasoning (model.train_cfg.think).
#   python tools/train.py configs/segzero/segzero_tiny_sft-600-grpo-100_toy-city-1-30.py
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/segzero_tiny.py',
    '../_base_/datasets/toy_city_segzero.py',
    '../_base_/schedules/segzero_grpo.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
sft_iters, grpo_iters = 600, 100
max_iters = sft_iters + grpo_iters
train_cfg = dict(
    _delete_=True,
    type='CORAStagedTrainLoop',
    stages=[dict(name='sft', iters=sft_iters),
            dict(name='grpo', iters=grpo_iters)],
    max_iters=max_iters,
    val_interval=max_iters,
    val_at_stage_ends=True)
# The segmenter is frozen and must already segment from a box and points, as SAM 2 does: the
# toy foundation SAM (segment-anything's architecture at tiny widths, 256 px input, patch 8),
# pretrained on promptable segmentation of the toy foundation corpus (scenes the toy city
# never trains or tests on), made once and cached by recipe, as CORA's toy SAM. A random SAM 2
# would make cIoU / gIoU measure nothing (the reasoner's box accuracy still would).
model = dict(
    train_cfg=dict(mode='sft'),
    segmenter=dict(
        _delete_=True,
        type='SAMPromptSegmenter',
        tiny=dict(img_size=256, patch_size=8, window_size=8),
        toy_pretrain=dict()))
# Random tiny weights learn at 3e-3, not at Seg-Zero's 1e-6 for a pretrained 3B: after 300
# warm-start steps 0.4 % of val replies were readable at 1e-3, 48 % at 3e-3 (73 % after 600,
# on 6 val images); GRPO then runs 20 times lower.
optim_wrapper = dict(optimizer=dict(lr=3e-3, weight_decay=0.0))
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
