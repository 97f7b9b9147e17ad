"""The toy SAM checkpoint: made once per recipe from the foundation corpus, then cached.

The real SAM ViT-H checkpoint is a file a user downloads; the toy's is a file made on this
machine by :func:`pretrain_sam` and kept in the toy foundation cache (:mod:`.cache`), in a
folder named by a hash of everything that determines it: the tiny architecture, the
:class:`SAMRecipe`, the toy generator's format and this module's :data:`RECIPE_VERSION`.
The file is a plain segment-anything state dict, the format of ``sam_vit_h_4b8939.pth``, so
:class:`~mmcora.models.sam.SAMWrapper` loads it through its ``checkpoint`` path like an
official one. The recipe is shipped, never the weights.
"""
import json
import os
import os.path as osp
import time
from dataclasses import asdict
from typing import Dict, Optional

import torch
from mmengine.logging import print_log

from ...datasets.toy_city_generator import FORMAT_VERSION as TOY_FORMAT_VERSION
from .cache import Progress, build_recipe, cache_folder, make_once
from .corpus import HELD_OUT_STREAM, FoundationCorpus
from .sam_pretrain import SAMRecipe, evaluate_box_prompts, pretrain_sam

RECIPE_VERSION = 1  # bump when the corpus sampling or the training loop changes
CHECKPOINT = 'sam_toy.pth'
MANIFEST = 'recipe.json'
HELD_OUT_SCENES = 20


def _spec(tiny: Dict, recipe: SAMRecipe) -> Dict:
    return dict(
        model='sam',
        recipe_version=RECIPE_VERSION,
        toy_format=TOY_FORMAT_VERSION,
        tiny={
            k: list(v) if isinstance(v, tuple) else v
            for k, v in tiny.items()
        },
        recipe=asdict(recipe))


def toy_sam_path(tiny: Dict, recipe: SAMRecipe) -> str:
    """Where the checkpoint of this architecture and recipe lives (whether made or not)."""
    return osp.join(cache_folder('sam', _spec(tiny, recipe)), CHECKPOINT)


def ensure_toy_sam(tiny: Dict, recipe: Optional[Dict] = None) -> str:
    """Return the cached toy SAM checkpoint for ``tiny``, pretraining it first if absent.

    Pretraining runs on one thread (the weights must not depend on the machine's core count)
    inside :func:`torch.random.fork_rng`, so the caller's random state is the same whether the
    file was made now or found. An interrupted run resumes from ``partial.pth`` next to it.

    Args:
        tiny (dict): The complete tiny SAM spec (every key of
            :data:`~mmcora.models.sam.TINY_DEFAULTS`).
        recipe (dict, optional): :class:`SAMRecipe` overrides.

    Returns:
        str: Path of a segment-anything state dict.
    """
    recipe_obj = build_recipe(SAMRecipe, recipe)
    path = toy_sam_path(tiny, recipe_obj)
    make_once(
        osp.dirname(path), lambda: osp.isfile(path), lambda: _pretrain(tiny, recipe_obj, path))
    return path


def _pretrain(tiny: Dict, recipe_obj: SAMRecipe, path: str) -> None:
    folder = osp.dirname(path)
    print_log(
        f'pretraining the toy SAM once ({recipe_obj.steps} steps on '
        f'{recipe_obj.num_scenes} foundation scenes; cached at {folder})',
        logger='current')
    from ..sam.sam_wrapper import build_tiny_sam  # the wrapper imports this module
    threads = torch.get_num_threads()
    started = time.time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe_obj.seed)
        torch.set_num_threads(1)
        try:
            sam = build_tiny_sam(**tiny)
            corpus = FoundationCorpus(
                seed=recipe_obj.seed, num_scenes=recipe_obj.num_scenes, height=128,
                width=256).render()
            stats = pretrain_sam(
                sam,
                corpus,
                recipe_obj,
                resume_file=osp.join(folder, 'partial.pth'),
                progress=Progress('toy SAM pretraining', ('loss', 'box_iou')))
            held_out = FoundationCorpus(
                seed=recipe_obj.seed, num_scenes=HELD_OUT_SCENES, stream=HELD_OUT_STREAM).render()
            box_iou = evaluate_box_prompts(sam, held_out, list(range(HELD_OUT_SCENES)))
        finally:
            torch.set_num_threads(threads)
    tmp = path + '.tmp'
    torch.save(sam.state_dict(), tmp)
    with open(osp.join(folder, MANIFEST), 'w', encoding='utf-8') as f:
        json.dump(
            dict(
                _spec(tiny, recipe_obj),
                last_step=stats,
                held_out_box_iou=round(box_iou, 4),
                seconds=round(time.time() - started, 1)),
            f,
            indent=2)
    os.replace(tmp, path)
    partial = osp.join(folder, 'partial.pth')
    if osp.isfile(partial):
        os.remove(partial)
    print_log(
        f'toy SAM pretrained: held-out box-prompt IoU {box_iou:.3f} '
        f'({time.time() - started:.0f} s); saved {path}',
        logger='current')
