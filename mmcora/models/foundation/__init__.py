"""Toy foundation models: tiny SAM and tiny LLaVA pretrained on a synthetic corpus."""
from .cache import build_recipe, foundation_cache_dir
from .corpus import FOUNDATION_STREAM, HELD_OUT_STREAM, FoundationCorpus, Region, scene_regions
from .llava_pretrain import LLaVAPretrainer, LLaVARecipe
from .sam_pretrain import SAMRecipe, evaluate_box_prompts, pretrain_sam
from .toy_llava import ensure_toy_llava, toy_llava_path
from .toy_sam import ensure_toy_sam, toy_sam_path

__all__ = [
    'FoundationCorpus', 'Region', 'scene_regions', 'FOUNDATION_STREAM', 'HELD_OUT_STREAM',
    'SAMRecipe', 'pretrain_sam', 'evaluate_box_prompts', 'ensure_toy_sam', 'foundation_cache_dir',
    'toy_sam_path', 'LLaVARecipe', 'LLaVAPretrainer', 'ensure_toy_llava', 'toy_llava_path',
    'build_recipe'
]
