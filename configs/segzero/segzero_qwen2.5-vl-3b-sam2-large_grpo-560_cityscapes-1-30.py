# Seg-Zero (Qwen2.5-VL-3B-Instruct + SAM 2 Large) trained by GRPO on the Cityscapes 1/30
# instruction data (the 100 labeled images' semantic, attribute and conditional
# instructions; conditional ones name their anchor in words). Seg-Zero's recipe: G = 8, KL
# 5e-3 (k3, as a loss), lr 1e-6 constant, 16 prompts per step (2 per GPU on 8 GPUs; on 4 GPUs
# add --cfg-options optim_wrapper.accumulative_counts=2), strict format + hard accuracy
# rewards, a checkpoint every 50 steps (pick one on val: Seg-Zero's best lies at 100-500).
#   tools/dist_train.sh \
#     configs/segzero/segzero_qwen2.5-vl-3b-sam2-large_grpo-560_cityscapes-1-30.py 8
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/segzero_qwen2.5-vl-3b_sam2-large.py',
    '../_base_/datasets/cityscapes_segzero.py',
    '../_base_/schedules/segzero_grpo.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
train_dataloader = dict(batch_size=2)
env_cfg = dict(cudnn_benchmark=False)
