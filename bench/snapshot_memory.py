"""Memory of stage 3's frozen consistency snapshot at the paper's size (LLaVA-1.5-7B + SAM ViT-H).

    python bench/snapshot_memory.py

The snapshot copies exactly the parameters that train and that the consistency passes read
(``ParameterSnapshot`` with the untied LM head excluded): LoRA on q/v, the token embeddings,
the [SEG] projector, SAM's mask decoder (its IoU head is frozen) and the anchor encoder. The
7B language model is built on the meta device from LLaVA-1.5-7B's configuration (no weights,
no memory), LoRA injected with peft as ``LlavaMLLM`` does, the heads built as mmcora builds
them; the parameter counts are those of the real model. Prints the snapshot's size next to
the bf16 base model it shares everything else with.
"""
import torch
from peft import LoraConfig, inject_adapter_in_model
from segment_anything.modeling import MaskDecoder, TwoWayTransformer
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from mmcora.models.mllm import AnchorEncoder, SegTokenProjector

# llava-hf/llava-1.5-7b-hf: LLaMA-2-7B text model (vocab 32064), CLIP ViT-L/14-336
TEXT = LlamaConfig(
    vocab_size=32064,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32)
VISION = CLIPVisionConfig(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768)
NEW_TOKENS = 3  # [SEG], [ANCHOR_MASK], [ANCHOR_BOX]


def count(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def main() -> None:
    with torch.device('meta'):
        llava = LlavaForConditionalGeneration(LlavaConfig(text_config=TEXT, vision_config=VISION))
        llava.resize_token_embeddings(TEXT.vocab_size + NEW_TOKENS, mean_resizing=False)
        llava.requires_grad_(False)
        inject_adapter_in_model(
            LoraConfig(
                r=8,
                lora_alpha=16,
                lora_dropout=0.05,
                bias='none',
                target_modules=r'.*language_model.*\.(q_proj|v_proj)'), llava)
    lora = sum(p.numel() for n, p in llava.named_parameters() if 'lora_' in n)
    embed = llava.get_input_embeddings().weight.numel()
    base = sum(p.numel() for n, p in llava.named_parameters() if 'lora_' not in n)
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer_dim=256,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8))
    decoder.iou_prediction_head.requires_grad_(False)
    parts = dict(
        lora=lora,
        token_embeddings=embed,
        seg_projector=count(SegTokenProjector(4096, 256)),
        sam_mask_decoder=count(decoder, trainable_only=True),
        anchor_encoder=count(AnchorEncoder(1024, 4096)))
    total = sum(parts.values())
    for name, n in parts.items():
        print(f'{name:18s} {n / 1e6:8.2f} M params  {n * 4 / 2**20:8.1f} MiB (float32)')
    print(f'{"snapshot":18s} {total / 1e6:8.2f} M params  {total * 4 / 2**20:8.1f} MiB')
    print(f'LLaVA-1.5-7B base weights {base / 1e9:.2f} B params, {base * 2 / 2**30:.2f} GiB in '
          f'bfloat16: the snapshot is {total * 4 / (base * 2):.1%} of it; a second base model '
          f'would be 100%')


if __name__ == '__main__':
    main()
