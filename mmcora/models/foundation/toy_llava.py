"""The toy LLaVA: the tiny LLaVA pretrained once per recipe on the foundation corpus, cached.

LLaVA-1.5-7B is a Hugging Face directory a user downloads; the toy's is a directory made on
this machine by :class:`~.llava_pretrain.LLaVAPretrainer` from the tiny random-weight LLaVA
(:func:`~mmcora.models.mllm.tiny_llava.write_tiny_llava`) and kept in the toy foundation cache
(:mod:`.cache`), named by a hash of the tiny spec, the :class:`LLaVARecipe`, the toy
generator's format and :data:`RECIPE_VERSION`. It is written with ``save_pretrained`` (model,
tokenizer, image processor), so :class:`~mmcora.models.mllm.LlavaMLLM` loads it with
``from_pretrained`` like the real one. The recipe is shipped, never the weights.
"""
import json
import os
import os.path as osp
import shutil
import time
from dataclasses import asdict
from typing import Dict, Optional

import torch
from mmengine.logging import print_log

from ...datasets.toy_city_generator import FORMAT_VERSION as TOY_FORMAT_VERSION
from .cache import Progress, build_recipe, cache_folder, make_once
from .corpus import HELD_OUT_STREAM, FoundationCorpus
from .llava_pretrain import LLaVAPretrainer, LLaVARecipe

RECIPE_VERSION = 1  # bump when the corpus sampling, the texts or the training loop change
MANIFEST = 'recipe.json'
HELD_OUT_SCENES = 40


def toy_llava_path(spec: Dict, recipe: LLaVARecipe) -> str:
    """Where the directory of this tiny spec and recipe lives (whether made or not)."""
    return cache_folder(
        'llava',
        dict(
            model='llava',
            recipe_version=RECIPE_VERSION,
            toy_format=TOY_FORMAT_VERSION,
            tiny=spec,
            recipe=asdict(recipe)))


def ensure_toy_llava(base: str, spec: Dict, recipe: Optional[Dict] = None) -> str:
    """Return the cached pretrained toy LLaVA made from the random tiny one at ``base``.

    Pretraining runs on one thread inside :func:`torch.random.fork_rng` (the caller's random
    state is the same whether it was made now or found), under a file lock, and resumes
    from ``partial.pth`` in the folder if it was interrupted.

    Args:
        base (str): Directory of the tiny random-weight LLaVA that ``spec`` describes.
        spec (dict): Its complete spec (manifest of ``write_tiny_llava``, format version included).
        recipe (dict, optional): :class:`LLaVARecipe` overrides (a config's ``toy_pretrain``).

    Returns:
        str: A Hugging Face ``save_pretrained`` directory.
    """
    recipe_obj = build_recipe(LLaVARecipe, recipe)
    folder = toy_llava_path(spec, recipe_obj)
    manifest = osp.join(folder, MANIFEST)
    make_once(folder, lambda: osp.isfile(manifest),
              lambda: _pretrain(base, spec, recipe_obj, folder))
    return folder


def _pretrain(base: str, spec: Dict, recipe: LLaVARecipe, folder: str) -> None:
    from transformers import AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration

    from ..mllm.tiny_llava import MANIFEST as TINY_MANIFEST
    from ..mllm.tiny_llava import SYSTEM_PROMPT
    print_log(
        f'pretraining the toy LLaVA once ({recipe.clip_steps} CLIP, '
        f'{recipe.language_steps} language, {recipe.align_steps} alignment and '
        f'{recipe.tune_steps} instruction steps on {recipe.num_scenes} foundation '
        f'scenes; cached at {folder})',
        logger='current')
    threads = torch.get_num_threads()
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(base)
    processor = CLIPImageProcessor.from_pretrained(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        torch.set_num_threads(1)
        try:
            model = LlavaForConditionalGeneration.from_pretrained(base, dtype=torch.float32)
            corpus = FoundationCorpus(seed=recipe.seed, num_scenes=recipe.num_scenes).render()
            trainer = LLaVAPretrainer(model, tokenizer, processor.image_mean, processor.image_std,
                                      corpus, recipe, SYSTEM_PROMPT)
            stats = trainer.run(
                resume_file=osp.join(folder, 'partial.pth'),
                progress=Progress('toy LLaVA pretraining', ('patch_ce', 'crop_acc', 'answer_ce')))
            held_out = FoundationCorpus(
                seed=recipe.seed, num_scenes=HELD_OUT_SCENES, stream=HELD_OUT_STREAM).render()
            measured = trainer.evaluate(held_out)
        finally:
            torch.set_num_threads(threads)
    tmp = osp.join(folder, '.writing')
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    shutil.copy(osp.join(base, TINY_MANIFEST), tmp)
    for name in os.listdir(tmp):
        os.replace(osp.join(tmp, name), osp.join(folder, name))
    os.rmdir(tmp)
    with open(osp.join(folder, MANIFEST), 'w', encoding='utf-8') as f:  # last: marks done
        json.dump(
            dict(
                model='llava',
                recipe_version=RECIPE_VERSION,
                toy_format=TOY_FORMAT_VERSION,
                tiny=spec,
                recipe=asdict(recipe),
                last_step=stats,
                held_out={
                    k: round(v, 4)
                    for k, v in measured.items()
                },
                seconds=round(time.time() - started, 1)),
            f,
            indent=2)
    print_log(
        f'toy LLaVA pretrained: held-out crop accuracy {measured["crop_acc"]:.3f}, '
        f'exact answers {measured["qa_exact"]:.3f} (blank image '
        f'{measured["qa_exact_blank"]:.3f}), {time.time() - started:.0f} s; '
        f'saved {folder}',
        logger='current')
