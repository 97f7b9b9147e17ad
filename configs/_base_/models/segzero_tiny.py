# Seg-Zero with a tiny Qwen2.5-VL and a tiny SAM 2, written offline on first use at these
# paths (random weights): the real classes, processors, canvas (840 px -> 900 image tokens),
# 1024 px SAM 2 input and tokenizer behaviour at test widths, for tests and the CPU toy.
_base_ = ['./segzero_qwen2.5-vl-3b_sam2-large.py']
reasoner_path = 'checkpoints/tiny-qwen2.5-vl-hf'
sam2_path = 'checkpoints/tiny-sam2-hf'
model = dict(
    reasoner=dict(
        pretrained=reasoner_path,
        tiny=dict(),
        dtype='float32',
        gradient_checkpointing=False,
        max_new_tokens=96),
    segmenter=dict(pretrained=sam2_path, tiny=dict(), dtype='float32'),
    test_cfg=dict(max_new_tokens=96))
