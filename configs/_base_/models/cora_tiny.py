# CORA with a tiny random-weight LLaVA (written offline at `llava_path` on first use) and a
# tiny SAM: the real model's classes and settings at test size, for tests and the CPU demo.
# The pipeline must give SAM 256-pixel inputs and CLIP 56-pixel ones.
_base_ = ['./cora_llava-7b_sam-vit-h.py']
llava_path = 'checkpoints/tiny-llava-hf'
model = dict(
    mllm=dict(pretrained=llava_path, tiny=dict(), dtype='float32', gradient_checkpointing=False),
    sam=dict(_delete_=True, type='SAMWrapper', tiny=dict(img_size=256)),
    test_cfg=dict(max_new_tokens=16))
