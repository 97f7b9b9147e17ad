# Seg-Zero (arXiv 2503.06520): Qwen2.5-VL-3B-Instruct writes <think>...</think> and a JSON box
# + two points on an 840 x 840 canvas; frozen SAM 2 Large makes the mask from them. The
# reasoner is fully fine-tuned by GRPO (G = 8, KL 5e-3 as a k3 loss term, PPO clip 0.2) on
# Seg-Zero's five rewards (strict format). Hugging Face directories, downloaded by the user:
#   checkpoints/Qwen2.5-VL-3B-Instruct (Qwen/Qwen2.5-VL-3B-Instruct)
#   checkpoints/sam2-hiera-large      (facebook/sam2-hiera-large, transformers format)
reasoner_path = 'checkpoints/Qwen2.5-VL-3B-Instruct'
sam2_path = 'checkpoints/sam2-hiera-large'
model = dict(
    type='SegZeroSegmentor',
    data_preprocessor=dict(type='SegZeroDataPreProcessor'),
    reasoner=dict(
        type='QwenReasoner',
        pretrained=reasoner_path,
        dtype='bfloat16',
        gradient_checkpointing=True,
        max_new_tokens=1300,
        temperature=1.0),
    segmenter=dict(type='SAM2Segmenter', pretrained=sam2_path, dtype='bfloat16'),
    reward=dict(
        type='SegZeroReward',
        terms=[
            dict(type='ThinkFormatReward'),
            dict(type='AnswerFormatReward', strict=True),
            dict(type='BoxIoUReward', threshold=0.5),
            dict(type='BoxL1Reward', threshold=10.),
            dict(type='PointDistanceReward', threshold=100.),
        ]),
    train_cfg=dict(mode='grpo', num_generations=8, kl_coef=5e-3, clip_eps=0.2),
    test_cfg=dict(max_new_tokens=1024))
