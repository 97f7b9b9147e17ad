"""A tiny SAM 2 in Hugging Face format (``Sam2Model`` + ``Sam2Processor``), made offline.

SAM 2 Large is a Hugging Face directory (``facebook/sam2-hiera-large``) a user downloads; the
tests and the toy write one of the same classes with seeded random weights. Only widths and
depths shrink: the 1024 x 1024 input, the Hiera stride-4 patch embedding, the three feature
levels (256, 128, 64 px grids) and the mask decoder's 3 multimask outputs stay.
"""
from typing import Dict

import torch

from ...utils.tiny_checkpoint import ensure_tiny_checkpoint, write_manifest

MANIFEST = 'mmcora_tiny.json'
FORMAT_VERSION = 1
DEFAULT_SPEC: Dict = dict(stage_dims=(8, 16, 32, 64), blocks=(1, 1, 2, 1), hidden_size=32, seed=0)


def tiny_sam2_config(stage_dims, blocks, hidden_size):
    """A ``Sam2Config`` with SAM 2's geometry and tiny widths.

    Hiera puts a global-attention block at the start of no stage (one there divides by zero
    in its window partition), so the only one is the second block of the third stage.
    """
    from transformers import Sam2Config
    stage_dims, blocks = list(stage_dims), list(blocks)
    backbone = dict(
        model_type='sam2_hiera_det_model',
        hidden_size=stage_dims[0],
        embed_dim_per_stage=stage_dims,
        blocks_per_stage=blocks,
        num_attention_heads_per_stage=[1] * len(blocks),
        global_attention_blocks=[sum(blocks[:2]) + 1])
    return Sam2Config(
        vision_config=dict(
            backbone_config=backbone,
            backbone_channel_list=stage_dims[::-1],
            fpn_hidden_size=hidden_size),
        prompt_encoder_config=dict(hidden_size=hidden_size),
        mask_decoder_config=dict(
            hidden_size=hidden_size,
            mlp_dim=2 * hidden_size,
            num_attention_heads=2,
            iou_head_hidden_dim=hidden_size))


def tiny_sam2_spec(**spec) -> Dict:
    """The complete manifest of the tiny SAM 2 with these overrides."""
    full = {**DEFAULT_SPEC, **spec}
    return dict(
        format_version=FORMAT_VERSION,
        **{
            k: list(v) if isinstance(v, (tuple, list)) else v
            for k, v in full.items()
        })


def write_tiny_sam2(path: str, **spec) -> None:
    """Write a tiny SAM 2 directory (weights and processor) at ``path``."""
    from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor
    spec = {**DEFAULT_SPEC, **spec}
    config = tiny_sam2_config(spec['stage_dims'], spec['blocks'], spec['hidden_size'])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec['seed'])
        model = Sam2Model(config)
    model.save_pretrained(path)
    Sam2Processor(image_processor=Sam2ImageProcessor()).save_pretrained(path)
    write_manifest(path, MANIFEST, tiny_sam2_spec(**spec))


def ensure_tiny_sam2(path: str, **spec) -> str:
    """Write the tiny SAM 2 at ``path`` unless an identical one is there (atomic).

    Args:
        path (str): Where the directory goes.
        **spec (dict): Overrides of :data:`DEFAULT_SPEC`.

    Returns:
        str: ``path``.
    """
    return ensure_tiny_checkpoint(path, MANIFEST, tiny_sam2_spec(**spec),
                                  lambda folder: write_tiny_sam2(folder, **spec), 'tiny SAM 2')
