"""The toy foundation SAM: corpus apart from the toy city, resumable pretraining, the cache."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmcora.models.foundation import (FoundationCorpus, SAMRecipe, ensure_toy_sam, pretrain_sam,
                                      scene_regions, toy_sam_path)
from mmcora.models.sam import TINY_DEFAULTS, SAMWrapper, build_tiny_sam

# The toy config's geometry (256-pixel input, 32 x 32 embedding grid) at a test budget.
TINY = {**TINY_DEFAULTS, 'img_size': 256, 'patch_size': 8, 'window_size': 8}
RECIPE = dict(num_scenes=3, steps=4, images_per_step=2, masks_per_image=3, class_weight=1.0)


class _Stop(Exception):
    pass


def _weights(sam) -> dict:
    return {k: v.clone() for k, v in sam.state_dict().items()}


def test_corpus_scenes_are_not_toy_city_scenes():
    from mmcora.datasets.toy_city_render import render_scene
    corpus = FoundationCorpus(seed=0, num_scenes=2).render()
    for split in (0, 1):
        toy, _, _ = render_scene(np.random.default_rng([0, split, 0]), 128, 256)
        assert not np.array_equal(toy, corpus.scene(0)[0])
    # Every segment is a non-empty mask inside its box, of one class.
    image, train_ids, instances = corpus.scene(0)
    regions = scene_regions(train_ids, instances)
    assert regions
    for region in regions:
        x0, y0, x1, y1 = region.bbox
        assert region.mask.sum() == region.mask[y0:y1, x0:x1].sum() > 0
        assert np.all(train_ids[region.mask] == region.class_id)


def test_pretraining_learns_and_resumes_exactly(tmp_path):
    corpus = FoundationCorpus(num_scenes=RECIPE['num_scenes']).render()
    recipe = SAMRecipe(**RECIPE)
    torch.manual_seed(0)
    straight = build_tiny_sam(**TINY)
    before = _weights(straight)
    pretrain_sam(straight, corpus, recipe)
    assert any(not torch.equal(before[k], v) for k, v in straight.state_dict().items())

    # Crash after step 3: the state of step 2 is on disk; a new run finishes from it.
    def crash(done, total, stats):
        if done == 3:
            raise _Stop

    resume = str(tmp_path / 'partial.pth')
    torch.manual_seed(0)
    interrupted = build_tiny_sam(**TINY)
    with pytest.raises(_Stop):
        pretrain_sam(interrupted, corpus, recipe, resume_file=resume, save_every=2, progress=crash)
    assert torch.load(resume, weights_only=True)['step'] == 2
    torch.manual_seed(123)  # the fresh model's own weights must not matter
    resumed = build_tiny_sam(**TINY)
    pretrain_sam(resumed, corpus, recipe, resume_file=resume, save_every=2)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_cache_is_made_once_keyed_by_recipe_and_keeps_the_callers_rng(tmp_path, monkeypatch):
    monkeypatch.setenv('MMCORA_CACHE_DIR', str(tmp_path))
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    path = ensure_toy_sam(TINY, RECIPE)
    assert torch.equal(torch.rand(3), expected_next)
    assert path == toy_sam_path(TINY, SAMRecipe(**RECIPE)) and osp.isfile(path)
    assert path.startswith(
        str(tmp_path)) and not osp.exists(osp.join(osp.dirname(path), 'partial.pth'))
    assert osp.isfile(osp.join(osp.dirname(path), 'recipe.json'))
    made = osp.getmtime(path)
    assert ensure_toy_sam(TINY, RECIPE) == path and osp.getmtime(path) == made
    assert toy_sam_path(TINY, SAMRecipe(**{**RECIPE, 'steps': 5})) != path
    assert toy_sam_path({**TINY, 'embed_dim': 48}, SAMRecipe(**RECIPE)) != path

    # The wrapper loads exactly that file, which is a plain segment-anything state dict.
    wrapper = SAMWrapper(tiny=dict(img_size=256, patch_size=8, window_size=8), toy_pretrain=RECIPE)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == set(wrapper.state_dict())
    for key, value in saved.items():
        assert torch.equal(value, wrapper.state_dict()[key]), key


def test_toy_pretrain_needs_a_tiny_model_and_no_checkpoint(tmp_path):
    with pytest.raises(ValueError, match='toy_pretrain'):
        SAMWrapper(model_type='vit_b', toy_pretrain={})
    with pytest.raises(ValueError, match='toy_pretrain'):
        SAMWrapper(tiny=dict(img_size=256), checkpoint=str(tmp_path / 'x.pth'), toy_pretrain={})
