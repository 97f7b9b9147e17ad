# CORA, all three stages, LLaVA-1.5-7B + SAM ViT-H on the Cityscapes 1/30 partition (100
# labeled images + UniMatch pseudo-labels on the other 2875). Paper: AdamW 2e-5, batch 8
# (2 x 4 GPUs), K = 7, equal stage lengths (their number is not given; 3 x 3000 here).
#   tools/dist_train.sh configs/cora/cora-semi_llava-7b-sam-vit-h_3x3k_cityscapes-1-30.py 4
# Table 4 switches (README): CVI off  train_cfg.stages.1.iters=0 train_cfg.stages.0.iters=6000
#   OCPL off / confidence baseline  model.loss_pseudo.mapping=confidence
#   TFCA off  model.loss_token=None model.token_bank=None (and drop TokenBankHook)
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/cora-semi_llava-7b_sam-vit-h.py',
    '../_base_/datasets/cityscapes_reasoning.py',
    '../_base_/datasets/cityscapes_semi_reasoning.py',
    '../_base_/schedules/cora-semi_3x3k.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
model = dict(token_bank=dict(num_classes=19))
train_dataloader = dict(_delete_=True, ref='semantic_dataloader')  # stage 1
custom_hooks = [
    dict(type='DataFilesCheckHook'),
    dict(type='TokenBankHook'),
    dict(type='RandomStateHook')
]  # exact --resume (LoRA dropout)
env_cfg = dict(cudnn_benchmark=False)
