"""The toy foundation LLaVA: texts from the scene's labels, the CLIP targets, resumable
deterministic pretraining in Hugging Face format, and that it learned to look."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmcora.models.foundation import (FoundationCorpus, LLaVAPretrainer, LLaVARecipe,
                                      ensure_toy_llava, scene_regions, toy_llava_path)
from mmcora.models.foundation.llava_pretrain import patch_class_mix
from mmcora.models.foundation.scene_text import caption, scene_questions, side_of
from mmcora.models.mllm.tiny_llava import SYSTEM_PROMPT, ensure_tiny_llava, tiny_spec

RECIPE = dict(
    num_scenes=4,
    clip_steps=3,
    clip_images=2,
    clip_crops=3,
    language_steps=2,
    align_steps=2,
    tune_steps=3,
    texts_per_step=2)


class _Stop(Exception):
    pass


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    return ensure_tiny_llava(str(tmp_path_factory.mktemp('llava') / 'tiny-llava'))


def _trainer(base, recipe=RECIPE):
    from transformers import AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration
    recipe = LLaVARecipe(**recipe)
    processor = CLIPImageProcessor.from_pretrained(base)
    return LLaVAPretrainer(
        LlavaForConditionalGeneration.from_pretrained(base), AutoTokenizer.from_pretrained(base),
        processor.image_mean, processor.image_std,
        FoundationCorpus(num_scenes=recipe.num_scenes).render(), recipe, SYSTEM_PROMPT)


def test_texts_say_what_the_labels_show():
    labels = np.full((128, 256), 10, np.uint8)  # sky
    labels[80:, :] = 0  # road
    labels[90:110, 10:40] = 13  # a car on the left
    labels[90:110, 40:70] = 13  # a second car touching it
    instances = np.zeros((128, 256), np.int32)
    instances[90:110, 10:40], instances[90:110, 40:70] = 1, 2
    regions = scene_regions(labels, instances)
    assert caption(labels, regions) == 'A street scene with road and sky; two cars.'
    assert side_of(labels, 13) == 'On the left.'
    pairs = scene_questions(np.random.default_rng(0), labels, regions, 200)
    answers = dict(pairs)
    assert answers['How many cars are in the image?'] == 'Two.'
    assert answers['How many buses are in the image?'] == 'None.'
    assert answers['Is there any car in the image?'] == 'Yes.'
    assert answers['Is there any bus in the image?'] == 'No.'
    assert answers['On which side of the image is the sky?'] == 'In the middle.'
    assert {
        a
        for _, a in scene_questions(
            np.random.default_rng(0), labels, regions, 20, captions_only=True)
    } == {caption(labels, regions)}


def test_patch_targets_follow_the_padded_square():
    labels = np.zeros((128, 256), np.uint8)
    labels[:, 128:] = 10
    mix, weight = patch_class_mix(labels, 4)  # 256 x 256 square, image in rows 64..192
    weight = weight.view(4, 4)
    assert torch.all(weight[0] == 0) and torch.all(weight[3] == 0)  # padding
    assert torch.allclose(weight[1:3], torch.ones(2, 4))
    mix = mix.view(4, 4, -1)
    assert mix[1, 0, 0] == 1 and mix[1, 3, 10] == 1 and torch.allclose(
        mix[2].sum(-1), torch.ones(4))


def test_pretraining_resumes_exactly_in_any_stage(base, tmp_path):
    straight = _trainer(base)
    before = {k: v.clone() for k, v in straight.model.state_dict().items()}
    straight.run()
    after = straight.model.state_dict()
    for prefix in ('model.vision_tower', 'model.multi_modal_projector', 'model.language_model',
                   'lm_head'):
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix))

    # killed at clip's last step (resumes from its step 2), mid-stage in tune (from tune
    # step 2), and at align's first step (from the state saved between language and align)
    for stage, step in (('clip', 3), ('tune', 2), ('align', 1)):

        def crash(done, total, stats, name):
            if name == stage and done == step:
                raise _Stop

        resume = str(tmp_path / f'{stage}.pth')
        with pytest.raises(_Stop):
            _trainer(base).run(resume_file=resume, save_every=2, progress=crash)
        resumed, steps = _trainer(base), []
        resumed.run(
            resume_file=resume,
            save_every=2,
            progress=lambda done, total, stats, name: steps.append((name, done)))
        assert not osp.exists(resume)
        # it continued from the saved step, not from the start
        assert steps[0] == {
            'clip': ('clip', 3),
            'tune': ('tune', 3),
            'align': ('align', 1)
        }[stage], steps
        for key, value in after.items():
            assert torch.equal(value, resumed.model.state_dict()[key]), (stage, key)


def test_cache_is_hf_format_keyed_by_recipe_and_keeps_the_callers_rng(base, tmp_path, monkeypatch):
    from mmcora.models.mllm import LlavaMLLM
    monkeypatch.setenv('MMCORA_CACHE_DIR', str(tmp_path))
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    folder = ensure_toy_llava(base, tiny_spec(), RECIPE)
    assert torch.equal(torch.rand(3), expected_next)
    assert folder == toy_llava_path(tiny_spec(), LLaVARecipe(**RECIPE))
    assert folder.startswith(str(tmp_path)) and not osp.exists(osp.join(folder, 'partial.pth'))
    made = json.load(open(osp.join(folder, 'recipe.json')))
    assert made['recipe'] == {**LLaVARecipe().__dict__, **RECIPE}
    assert set(made['held_out']) == {'crop_acc', 'qa_exact', 'qa_exact_blank'}
    assert toy_llava_path(tiny_spec(), LLaVARecipe(**{**RECIPE, 'tune_steps': 4})) != folder
    assert toy_llava_path(tiny_spec(hidden_size=32), LLaVARecipe(**RECIPE)) != folder

    # The wrapper loads that directory with from_pretrained; the weights are the trained ones.
    mllm = LlavaMLLM(str(tmp_path / 'base'), tiny=dict(), toy_pretrain=RECIPE)
    trained, threads = _trainer(base), torch.get_num_threads()
    torch.set_num_threads(1)  # as the cache's pretraining does (sums depend on the threads)
    try:
        trained.run()
    finally:
        torch.set_num_threads(threads)
    vision = mllm.model.model.vision_tower.state_dict()
    for key, value in trained.model.model.vision_tower.state_dict().items():
        assert torch.equal(value, vision[key]), key


def _crop_features(model, processor, corpus, per_scene=6):
    """CLIP CLS features of segment crops, as the anchor encoder reads them, and classes."""
    from mmcora.datasets.transforms.reasoning import masked_crop
    from mmcora.models.foundation.llava_pretrain import TOY_RESIZE
    mean = torch.tensor(processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.image_std).view(3, 1, 1)
    size = model.config.vision_config.image_size
    crops, labels = [], []
    for index in range(len(corpus)):
        for region in corpus.regions(index)[:per_scene]:
            crop, _ = masked_crop(corpus.scene(index)[0], region.mask, size, TOY_RESIZE)
            crops.append((torch.from_numpy(crop).permute(2, 0, 1).float() / 255 - mean) / std)
            labels.append(region.class_id)
    with torch.no_grad():
        return model.model.vision_tower(pixel_values=torch.stack(crops)).pooler_output, \
            torch.tensor(labels)


def test_default_recipe_teaches_clip_the_classes_of_crops(base):
    # The anchor encoder reads CLIP's CLS feature of the anchor crop: after the default
    # recipe (from the foundation cache, made on first use), nearest class centroids of those
    # features name held-out crops far better than with the random tower.
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration

    from mmcora.models.foundation import HELD_OUT_STREAM
    folder = ensure_toy_llava(base, tiny_spec())
    fit, held_out = (FoundationCorpus(num_scenes=60).render(),
                     FoundationCorpus(num_scenes=20, stream=HELD_OUT_STREAM).render())
    accuracy = {}
    for name, path in (('random', base), ('pretrained', folder)):
        model = LlavaForConditionalGeneration.from_pretrained(path).eval()
        processor = CLIPImageProcessor.from_pretrained(path)
        x, y = _crop_features(model, processor, fit)
        classes = y.unique()
        centroids = torch.stack([x[y == c].mean(0) for c in classes])
        xh, yh = _crop_features(model, processor, held_out)
        guess = classes[torch.cdist(xh, centroids).argmin(1)]
        accuracy[name] = float((guess == yh).float().mean())
    assert accuracy['pretrained'] > accuracy['random'] + 0.15, accuracy
