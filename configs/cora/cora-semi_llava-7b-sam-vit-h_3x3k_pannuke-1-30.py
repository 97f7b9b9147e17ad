# CORA, all three stages, LLaVA-1.5-7B + SAM ViT-H on PanNuke: training fold 1, its 1/30
# partition (89 labeled patches + a teacher's pseudo-labels on the other 2567), val fold 2,
# test fold 3. Same recipe as the Cityscapes configs: AdamW 2e-5, batch 8 (2 x 4 GPUs), K = 7,
# 3 x 3000 iterations.
#   tools/dist_train.sh configs/cora/cora-semi_llava-7b-sam-vit-h_3x3k_pannuke-1-30.py 4
# Table 4 switches as for Cityscapes (configs/cora/README.md).
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/cora-semi_llava-7b_sam-vit-h.py',
    '../_base_/datasets/pannuke_reasoning.py',
    '../_base_/datasets/pannuke_semi_reasoning.py',
    '../_base_/schedules/cora-semi_3x3k.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
model = dict(token_bank=dict(num_classes=6))  # label ids 0-5 (background never drawn)
train_dataloader = dict(_delete_=True, ref='semantic_dataloader')  # stage 1
custom_hooks = [
    dict(type='DataFilesCheckHook'),
    dict(type='TokenBankHook'),
    dict(type='RandomStateHook')
]  # exact --resume (LoRA dropout)
env_cfg = dict(cudnn_benchmark=False)
