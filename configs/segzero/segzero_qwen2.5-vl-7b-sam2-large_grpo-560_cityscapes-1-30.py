# Seg-Zero with Qwen2.5-VL-7B-Instruct: the 3B config with the larger reasoner.
#   tools/dist_train.sh \
#     configs/segzero/segzero_qwen2.5-vl-7b-sam2-large_grpo-560_cityscapes-1-30.py 8
_base_ = ['./segzero_qwen2.5-vl-3b-sam2-large_grpo-560_cityscapes-1-30.py']
model = dict(reasoner=dict(pretrained='checkpoints/Qwen2.5-VL-7B-Instruct'))
