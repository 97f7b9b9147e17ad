# Zero-shot ReasonSeg evaluation of a Seg-Zero reasoner (Seg-Zero reports ReasonSeg without
# training on it): greedy decoding, up to 1024 new tokens, SAM 2 Large. Without a checkpoint
# it evaluates the instruction-tuned Qwen2.5-VL-7B itself; with one, the GRPO-trained policy:
#   python tools/test.py configs/segzero/segzero_qwen2.5-vl-7b-sam2-large_reasonseg-eval.py CKPT
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/segzero_qwen2.5-vl-3b_sam2-large.py',
    '../_base_/datasets/reasonseg_eval.py',
]
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
# evaluation only: no frozen reference copy of the 7B policy
model = dict(
    reasoner=dict(
        pretrained='checkpoints/Qwen2.5-VL-7B-Instruct',
        reference=False,
        gradient_checkpointing=False))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SegZeroInputs', canvas=840),
    dict(type='PackSegZeroInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_evaluator = dict(type='SegZeroMetric', prefix='segzero')
test_evaluator = val_evaluator
env_cfg = dict(cudnn_benchmark=False)
