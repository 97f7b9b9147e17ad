# CORA at the paper's size: LLaVA-1.5-7B (Hugging Face format, e.g. a local copy of
# llava-hf/llava-1.5-7b-hf) and SAM ViT-H (segment-anything's sam_vit_h_4b8939.pth).
# Nothing is downloaded: point these two paths at your files, in the config or with
#   --cfg-options model.mllm.pretrained=/path/llava-1.5-7b-hf model.sam.checkpoint=/path/sam.pth
llava_path = 'checkpoints/llava-1.5-7b-hf'
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
# The pipeline must give SAM 1024-pixel inputs and CLIP 336-pixel ones (ViT-L/14-336).
model = dict(
    type='CORASegmentor',
    data_preprocessor=dict(type='ReasoningDataPreProcessor'),
    mllm=dict(
        type='LlavaMLLM',
        pretrained=llava_path,
        lora=dict(r=8, alpha=16, dropout=0.05, target_modules=('q_proj', 'v_proj')),
        train_token_embeddings=True,
        dtype='bfloat16',
        gradient_checkpointing=True),
    # the frozen ViT-H in the LLM's bf16 (as LISA runs it); decoder and losses stay fp32
    sam=dict(
        type='SAMWrapper',
        model_type='vit_h',
        checkpoint=sam_checkpoint,
        image_encoder_dtype='bfloat16'),
    loss_mask_bce=dict(type='MaskBCELoss', loss_weight=2.0),
    loss_mask_dice=dict(type='MaskDiceLoss', loss_weight=0.5),
    ce_loss_weight=1.0,
    projector=dict(type='SegTokenProjector'),  # sizes from the LLM and SAM
    anchor_encoder=dict(type='AnchorEncoder'),  # None: no anchor encoding
    test_cfg=dict(mode='teacher_forcing', max_new_tokens=32))  # answer: DEFAULT_ANSWER
