# CORA (LLaVA-1.5-7B + SAM ViT-H) on the Cityscapes 1/30 partition (100 labeled images):
# semantic, attribute and conditional instructions. Paper: AdamW 2e-5, batch 8 (2 x 4 GPUs).
#   tools/dist_train.sh configs/cora/cityscapes_1-30.py 4
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/cora_llava-7b_sam-vit-h.py',
    '../_base_/datasets/cityscapes_reasoning.py',
    '../_base_/schedules/cora_runtime.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
