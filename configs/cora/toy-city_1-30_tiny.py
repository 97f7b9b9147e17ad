# The embedded default: tiny CORA trained on the toy city's 1/30 labeled images (8) with
# semantic, attribute and conditional instructions; cIoU/gIoU on the fixed val instructions.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/cora_tiny.py',
    '../_base_/datasets/toy_city_reasoning.py',
    '../_base_/schedules/cora_runtime.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
max_iters = 2000
# The answer-token loss is weighed 0.01, not the paper's alpha = 1: in the shared LoRA and
# embedding parameters of a 64-wide LLM it drowns the mask signal (with the random LLM masks
# never left the all-background optimum in 2k steps; with the toy foundation LLM, val cIoU at
# step 750 is 25.7 at alpha = 1 against 31.0 at 0.01).
model = dict(
    ce_loss_weight=0.01,
    # The frozen LLaVA parts (CLIP tower, projector, LLM under LoRA) are pretrained as the
    # real ones were: CLIP crop and patch classification, language modelling, projector
    # alignment and instruction tuning on generated captions and questions about the toy
    # foundation corpus (mmcora.models.foundation.llava_pretrain), made once, cached by recipe.
    mllm=dict(toy_pretrain=dict()),
    # SAM's frozen image encoder is pretrained, as the real one is: promptable segmentation
    # and region classification on the toy foundation corpus (scenes the toy city never
    # trains or tests on), made once on first use and cached by recipe
    # (mmcora.models.foundation, tools/analysis/sam_linear_probe.py). Patch 8 gives a 32 x 32
    # embedding grid at 256 px (the real SAM: 64 x 64 at 1024 px); with patch 16 (16 x 16)
    # the tiny encoder does not learn to segment.
    sam=dict(tiny=dict(patch_size=8, window_size=8), toy_pretrain=dict()))
optim_wrapper = dict(optimizer=dict(lr=1e-3))  # random tiny weights learn faster than 2e-5
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=250)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=500, max_keep_ckpts=2))
# One torch thread: faster than a pool per core for these tiny models, and the numbers do
# not depend on the machine's core count (mmcora.engine.threads).
env_cfg = dict(cudnn_benchmark=False, torch_num_threads=1)
randomness = dict(seed=0)
