"""Shared-prefix packing: one sequence per image gives the losses and gradients of separate
sequences, with and without gradient checkpointing; evaluation chunks give the same results.

The model has LLaVA-1.5's geometry (336 px, patch 14: 576 image tokens, the LLaMA-style
tokenizer), so the packed rows are as long as a 7B user's.
"""
import pytest
import torch

from mmcora.models.mllm import LlavaMLLM, write_tiny_llava
from mmcora.models.mllm.packing import attention_bias, pack_queries

TEXTS = [
    'Can you segment the car?', 'Segment the bus to the left of the car <anchor>.',
    'Segment the sky.', 'Where is the rider in this image?', 'Segment the road, please.'
]
ANSWERS = ['It is [SEG].', 'Sure, [SEG].', '[SEG].', 'The rider is [SEG].', 'Sure, it is [SEG].']
# two images, their queries interleaved, the second image with one query more
INDEX = [1, 0, 1, 0, 1]


@pytest.fixture(scope='module')
def hf_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('hf') / 'llava-336')
    write_tiny_llava(path, tokenizer='llama', image_size=336, seed=5)
    return path


def _build(hf_dir, **kwargs):
    torch.manual_seed(0)
    mllm = LlavaMLLM(hf_dir, lora=dict(r=4, alpha=8, dropout=0.0), **kwargs).train()
    with torch.no_grad():  # LoRA B starts at 0: make the adapters matter
        for name, param in mllm.named_parameters():
            if 'lora_B' in name:
                param.normal_(std=0.05)
    return mllm


def _inputs(mllm):
    torch.manual_seed(1)
    features = mllm.image_features(torch.randn(2, 3, 336, 336))
    tokens = mllm.tokenize(TEXTS, ANSWERS, 'cpu')
    anchors = torch.randn(len(TEXTS), 2, mllm.hidden_size, requires_grad=True)
    return features, torch.tensor(INDEX), tokens, anchors


def _loss_and_grads(mllm, packed, features, index, tokens, anchors):
    mllm.zero_grad()
    anchors.grad = None
    ce, states, found = mllm.forward_full(features, index, tokens, anchors, packed=packed)
    weights = torch.linspace(-1, 1, states.numel()).view_as(states)
    (ce + (states * weights).sum()).backward()
    grads = {n: p.grad.clone() for n, p in mllm.named_parameters() if p.grad is not None}
    return ce.detach(), states.detach(), found, grads, anchors.grad.clone()


def _assert_same_gradient(packed, separate, name):
    """Equal up to float summation order: the tolerance scales with the gradient's size (sums
    over some 1800 prefix positions in another order differ by ~1e-6 of the largest entry)."""
    error = (packed - separate).abs().max().item()
    assert error <= 1e-5 * separate.abs().max().item() + 1e-8, f'{name}: off by {error}'


def test_layout_keeps_every_query_to_the_prefix_and_itself():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    layout = pack_queries(3, mask, torch.tensor([1, 0, 1]))
    assert layout.images.tolist() == [0, 1]
    # image 1: the prefix, query 0 (3 tokens), query 2 (4 tokens); image 0: query 1, padding
    assert layout.segment.tolist() == [[0, 0, 0, 2, 2, -1, -1, -1, -1, -1],
                                       [0, 0, 0, 1, 1, 1, 3, 3, 3, 3]]
    assert layout.positions[1].tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5, 6]
    assert layout.target[2].tolist() == [16, 17, 18, 19]  # row 1 (of width 10), from 6
    allowed = attention_bias(layout.segment, torch.float32)[:, 0] == 0
    # query 2's first token sees the prefix and itself, not query 0
    assert allowed[1, 6].nonzero().squeeze(1).tolist() == [0, 1, 2, 6]
    assert allowed[1, 9].nonzero().squeeze(1).tolist() == [0, 1, 2, 6, 7, 8, 9]
    assert not allowed[0, :5, 5:].any()  # nothing real sees padding


@pytest.mark.parametrize('checkpointing', [False, True], ids=['plain', 'gradient_checkpointing'])
def test_packed_equals_separate_sequences(hf_dir, checkpointing):
    mllm = _build(hf_dir, gradient_checkpointing=checkpointing)
    assert mllm.num_image_tokens == 576 and mllm.packed_prefix
    inputs = _inputs(mllm)
    separate = _loss_and_grads(mllm, False, *inputs)
    packed = _loss_and_grads(mllm, True, *inputs)
    torch.testing.assert_close(packed[0], separate[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(packed[1], separate[1], rtol=1e-4, atol=1e-5)
    assert packed[2].all() and separate[2].all()
    assert packed[3].keys() == separate[3].keys()
    assert any('lora_A' in n for n in packed[3]) and any('embed_tokens' in n for n in packed[3])
    for name, grad in separate[3].items():
        _assert_same_gradient(packed[3][name], grad, name)
    _assert_same_gradient(packed[4], separate[4], 'the anchor encodings')


def test_a_query_sees_nothing_of_the_others(hf_dir):
    mllm = _build(hf_dir)
    features, index, tokens, anchors = _inputs(mllm)
    with torch.no_grad():
        _, all_states, _ = mllm.forward_full(features, index, tokens, anchors)
        # query 4 alone on its image
        _, alone, _ = mllm.forward_full(features, index[4:], tokens[4:], anchors[4:])
        # query 1's anchor changed: query 3, on the same image, must not notice
        changed = anchors.clone()
        changed[1] += 1.
        _, others_changed, _ = mllm.forward_full(features, index, tokens, changed)
    torch.testing.assert_close(alone[0], all_states[4], rtol=1e-4, atol=1e-5)
    assert INDEX[1] == INDEX[3] and '<anchor>' in TEXTS[1]
    torch.testing.assert_close(others_changed[3], all_states[3], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(others_changed[1], all_states[1])


def test_evaluation_chunks_give_the_unchunked_results(hf_dir):
    whole = _build(hf_dir, eval_query_chunk=8).eval()
    chunked = _build(hf_dir, eval_query_chunk=2).eval()
    assert len(chunked.chunks(len(TEXTS))) == 3
    features, index, tokens, anchors = _inputs(whole)
    with torch.no_grad():
        results = [m.forward_cached(features, index, tokens, anchors) for m in (whole, chunked)]
        _, trained, _ = whole.forward_full(features, index, tokens, anchors)
        prompts = whole.tokenize(TEXTS, None, 'cpu')
        generated = [m.generate(features, index, prompts, anchors, 3) for m in (whole, chunked)]
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])
    torch.testing.assert_close(results[0][1], trained, rtol=1e-4, atol=1e-5)
    assert generated[1][0] == generated[0][0]
    torch.testing.assert_close(generated[1][1], generated[0][1])
    assert torch.equal(generated[1][2], generated[0][2])


def test_eval_query_chunk_must_be_positive(hf_dir):
    with pytest.raises(ValueError, match='eval_query_chunk must be a positive int'):
        LlavaMLLM(hf_dir, eval_query_chunk=0)
