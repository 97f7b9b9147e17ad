# CORA (LLaVA-1.5-7B + SAM ViT-H) on Cityscapes 1/30 with FSDP instead of DDP: the frozen
# weights, the trained ones and their AdamW state sharded over the GPUs
# (tools/analysis/model_size.py: 4.96 GB a GPU of 4 with bf16 base weights, against 19.83 for DDP).
#   tools/dist_train.sh configs/cora/cityscapes_1-30_fsdp.py 4 --amp
_base_ = ['./cityscapes_1-30.py', '../_base_/schedules/cora_fsdp.py']
# FSDP flattens each unit's parameters into one tensor of one dtype, and LoRA (float32) sits in
# the LLaMA layers beside the frozen weights: the base is float32 here (about 2x the sharded
# weight memory) and --amp gives the bf16 compute (autocast).
model = dict(mllm=dict(dtype='float32'), sam=dict(image_encoder_dtype=None))
