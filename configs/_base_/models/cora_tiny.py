# CORA with a tiny random-weight LLaVA (written offline at `llava_path` on first use) and a
# tiny SAM: the same classes as the real model, for tests and the CPU demo.
llava_path = 'checkpoints/tiny-llava-hf'
# The pipeline's SAMResize/CLIPInputs sizes must match SAM's img_size (256) and the tiny
# vision tower's image size (56); see configs/_base_/datasets/toy_city_reasoning.py.
model = dict(
    type='CORASegmentor',
    data_preprocessor=dict(type='ReasoningDataPreProcessor'),
    mllm=dict(
        type='LlavaMLLM',
        pretrained=llava_path,
        tiny=dict(),
        lora=dict(r=8, alpha=16, dropout=0.05, target_modules=('q_proj', 'v_proj')),
        train_token_embeddings=True,
        dtype='float32'),
    sam=dict(type='SAMWrapper', tiny=dict(img_size=256)),
    loss_mask_bce=dict(type='MaskBCELoss', loss_weight=2.0),
    loss_mask_dice=dict(type='MaskDiceLoss', loss_weight=0.5),
    ce_loss_weight=1.0,
    use_anchor_encoder=True,
    test_cfg=dict(mode='teacher_forcing', answer='[SEG].', max_new_tokens=16))
