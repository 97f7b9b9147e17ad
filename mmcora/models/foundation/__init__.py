"""Toy foundation models: tiny SAM (and later CLIP/LLaVA) pretrained on a synthetic corpus."""
from .corpus import FOUNDATION_STREAM, HELD_OUT_STREAM, FoundationCorpus, Region, scene_regions
from .sam_pretrain import SAMRecipe, evaluate_box_prompts, pretrain_sam
from .toy_sam import ensure_toy_sam, foundation_cache_dir, toy_sam_path

__all__ = [
    'FoundationCorpus', 'Region', 'scene_regions', 'FOUNDATION_STREAM', 'HELD_OUT_STREAM',
    'SAMRecipe', 'pretrain_sam', 'evaluate_box_prompts', 'ensure_toy_sam',
    'foundation_cache_dir', 'toy_sam_path'
]
