# Evaluate a CORA checkpoint (LLaVA-1.5-7B + SAM ViT-H) on ReasonSeg val/test (docs/reasonseg.md):
#   python tools/test.py configs/cora/reasonseg_eval_7b.py CHECKPOINT
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/cora_llava-7b_sam-vit-h.py',
    '../_base_/datasets/reasonseg_eval.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
