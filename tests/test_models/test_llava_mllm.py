"""The LLaVA wrapper: HF-format loading, special tokens, shared-prefix paths, generation."""
import os.path as osp

import pytest
import torch
from safetensors.torch import load_file

from mmcora.models.mllm import LlavaMLLM, QueryTokens, write_tiny_llava
from mmcora.models.mllm.llava_mllm import ANCHOR_BOX_TOKEN, ANCHOR_MASK_TOKEN, SEG_TOKEN


@pytest.fixture(scope='module')
def hf_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('hf') / 'llava')
    write_tiny_llava(path, seed=3)
    return path


@pytest.fixture(scope='module')
def mllm(hf_dir):
    torch.manual_seed(0)
    return LlavaMLLM(hf_dir, lora=dict(r=4, alpha=8, dropout=0.0)).eval()


def test_loads_a_save_pretrained_directory(hf_dir, mllm):
    saved = load_file(osp.join(hf_dir, 'model.safetensors'))
    params = dict(mllm.model.named_parameters())
    checked = 0
    for key, value in saved.items():
        name = key if key in params else f'model.{key}'
        if name in params and 'embed_tokens' not in name and 'lm_head' not in name:
            base = name.replace('.weight', '.base_layer.weight')
            param = params.get(base, params[name])
            assert torch.equal(param, value), name
            checked += 1
    assert checked > 20
    for token in (SEG_TOKEN, ANCHOR_MASK_TOKEN, ANCHOR_BOX_TOKEN):
        assert len(mllm.tokenizer(token, add_special_tokens=False).input_ids) == 1
    assert mllm.model.get_input_embeddings().num_embeddings >= len(mllm.tokenizer)


def test_lora_only_on_the_language_model(mllm):
    names = [n for n, _ in mllm.named_parameters() if 'lora_' in n]
    assert names and all('language_model' in n for n in names)
    assert all(('q_proj' in n) or ('v_proj' in n) for n in names)


def _inputs(mllm, answers=True):
    torch.manual_seed(1)
    features = mllm.image_features(torch.randn(2, 3, mllm.image_size, mllm.image_size))
    texts = [
        'Can you segment the car?', 'Segment the bus to the left of the car <anchor>.',
        'Segment the sky.'
    ]
    tokens = mllm.tokenize(texts, ['It is [SEG].', 'Sure, [SEG].', '[SEG].'] if answers else None,
                           'cpu')
    anchors = torch.randn(3, 2, mllm.hidden_size)
    return features, torch.tensor([0, 0, 1]), tokens, anchors


def test_full_and_cached_paths_agree(mllm):
    features, index, tokens, anchors = _inputs(mllm)
    ce_full, seg_full, found_full = mllm.forward_full(features, index, tokens, anchors)
    ce_cached, seg_cached, found_cached, *_ = mllm.forward_cached(features, index, tokens, anchors)
    assert found_full.all() and found_cached.all()
    torch.testing.assert_close(ce_full, ce_cached)
    torch.testing.assert_close(seg_full, seg_cached, atol=1e-5, rtol=1e-4)


def test_anchor_encodings_change_only_conditional_queries(mllm):
    features, index, tokens, anchors = _inputs(mllm)
    _, with_anchor, _ = mllm.forward_full(features, index, tokens, anchors)
    _, without, _ = mllm.forward_full(features, index, tokens, None)
    assert not torch.allclose(with_anchor[1], without[1])
    torch.testing.assert_close(with_anchor[[0, 2]], without[[0, 2]])


def test_batched_generation_equals_one_by_one_and_teacher_forcing(mllm):
    features, index, tokens, _ = _inputs(mllm, answers=False)
    texts, seg, found = mllm.generate(features, index, tokens, max_new_tokens=6)
    for i in range(3):
        length = int(tokens.mask[i].sum())
        single = QueryTokens(tokens.ids[i:i + 1, :length], None, tokens.mask[i:i + 1, :length])
        alone, _, _ = mllm.generate(features, index[i:i + 1], single, max_new_tokens=6)
        assert alone == [texts[i]]
    # force the model to emit [SEG] first: its state must equal the teacher-forced one
    head = mllm.model.lm_head

    class ForceSeg(torch.nn.Module):
        weight = head.weight

        def forward(self, states):
            logits = head(states)
            logits[..., mllm.seg_token_id] += 1e4
            return logits

    mllm.model.lm_head = ForceSeg()
    try:
        texts, seg, found = mllm.generate(features, index, tokens, max_new_tokens=2)
    finally:
        mllm.model.lm_head = head
    assert found.all() and all(t.startswith(SEG_TOKEN) for t in texts)
    # the same prompts with '[SEG]' appended as the teacher-forced answer
    lengths = tokens.mask.sum(1)
    rows = torch.arange(3)
    ids = torch.cat([tokens.ids, torch.full((3, 1), mllm.tokenizer.pad_token_id)], 1)
    ids[rows, lengths] = mllm.seg_token_id
    mask = torch.cat([tokens.mask, torch.zeros((3, 1), dtype=torch.long)], 1)
    mask[rows, lengths] = 1
    _, seg_forced, _, *_ = mllm.forward_cached(features, index, QueryTokens(ids, None, mask))
    torch.testing.assert_close(seg, seg_forced, atol=1e-5, rtol=1e-4)


def test_too_long_query_names_the_sample(mllm):
    with pytest.raises(ValueError, match=r'street.png query 1: the prompt has \d+ tokens'):
        mllm.tokenize(['short', 'segment ' * 2100],
                      None,
                      'cpu',
                      names=['street.png query 0', 'street.png query 1'])


def test_llava_1_5_geometry_fits_the_default_max_length(tmp_path):
    # 336 px and patch 14: 576 image tokens in the prefix, as LLaVA-1.5-7B (the default used
    # to be 512 tokens, which every 7B prompt exceeded).
    path = str(tmp_path / 'llava-336')
    write_tiny_llava(path, image_size=336)
    mllm = LlavaMLLM(path)
    assert mllm.num_image_tokens == 576 and len(mllm.prefix_ids('cpu')) > 600
    tokens = mllm.tokenize(
        ['Can you segment the car that is to the left of the person '
         '<anchor>?'], ['Sure, the segmentation is [SEG].'], 'cpu')
    _, states, found = mllm.forward_full(
        mllm.image_features(torch.randn(1, 3, 336, 336)), torch.tensor([0]), tokens)
    assert found.all() and states.shape == (1, mllm.hidden_size)


def test_wrong_clip_size_is_explained(mllm):
    with pytest.raises(ValueError, match='CLIP inputs must be 56x56'):
        mllm.image_features(torch.randn(1, 3, 64, 64))


def test_bf16_base_keeps_trainable_parameters_in_float32(hf_dir):
    mllm = LlavaMLLM(hf_dir, lora=dict(r=4, alpha=8, dropout=0.0), dtype='bfloat16')
    for name, param in mllm.named_parameters():
        expected = torch.float32 if param.requires_grad else torch.bfloat16
        assert param.dtype == expected, name
    features, index, tokens, anchors = _inputs(mllm)
    ce, states, found = mllm.forward_full(features, index, tokens, anchors)
    assert torch.isfinite(ce) and found.all() and states.dtype == torch.bfloat16
    (ce + states.float().sum() * 0).backward()
    lora_a = next(p for n, p in mllm.named_parameters() if 'lora_A' in n)
    embed = mllm.model.get_input_embeddings().weight
    assert lora_a.grad is not None and lora_a.grad.dtype == torch.float32
    assert embed.grad is not None and embed.grad.dtype == torch.float32
    texts, _, _ = mllm.generate(
        features, index, mllm.tokenize(['Segment the sky.'] * 3, None, 'cpu'), max_new_tokens=2)
    assert len(texts) == 3
