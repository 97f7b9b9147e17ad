"""Seg-Zero's reasoner on a tiny Qwen2.5-VL with the real geometry: 840 px canvas -> 900
image tokens, Qwen2's tokenizer behaviour, shared-prefix passes equal to full sequences."""
import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from mmcora.models.segzero import QwenReasoner, seg_zero_prompt


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def reasoner(qwen_dir):
    return QwenReasoner(qwen_dir, dtype='float32', max_new_tokens=24)


@pytest.fixture(scope='module')
def prompt(reasoner):
    canvas = np.random.RandomState(0).randint(0, 255, (840, 840, 3), np.uint8)
    return reasoner.build_prompt(canvas, 'Segment the car left of the bus.')


def test_real_geometry_840_canvas_gives_900_image_tokens(reasoner, prompt):
    image_id = reasoner.model.config.image_token_id
    assert int((prompt['input_ids'] == image_id).sum()) == 900
    assert prompt['image_grid_thw'].tolist() == [[1, 60, 60]]  # patches of 14 px, merged 2 x 2
    vision = reasoner.model.config.vision_config
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size) == (14, 2, 2)
    assert int(prompt['mm_token_type_ids'].sum()) == 900


def test_chat_template_and_prompt_are_qwens(reasoner):
    text = reasoner.chat_text('Find the Car.')
    assert text.startswith('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'
                           '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>')
    assert text.endswith(seg_zero_prompt('Find the Car.') + '<|im_end|>\n<|im_start|>assistant\n')
    assert "Please find 'find the car' with bbox and points." in text


def test_tokenizer_splits_digits_one_by_one_as_qwen2(reasoner):
    tokens = reasoner.tokenizer.tokenize('[10,100,200,210]')
    assert tokens == list('[10,100,200,210]')
    reply = reasoner.encode_reply('<think>a</think>')
    assert int(reply[-1]) == reasoner.eos_id


def test_shared_prefix_log_probs_equal_full_sequences_and_sampling(reasoner, prompt):
    rollout = reasoner.sample(prompt, 4, generator=torch.Generator().manual_seed(0))
    shared = reasoner.completion_logprobs(prompt, rollout.ids, share_prefix=True)
    full = reasoner.completion_logprobs(prompt, rollout.ids, share_prefix=False)
    mask = rollout.mask.bool()
    assert mask.any()
    assert torch.allclose(shared[mask], full[mask], atol=1e-5)
    assert torch.allclose(shared[mask], rollout.logprobs[mask], atol=1e-5)


def test_full_sequence_without_mm_token_type_ids_would_differ(reasoner, prompt):
    """Why every forward passes mm_token_type_ids: without it the 3-D positions are wrong."""
    rollout = reasoner.sample(prompt, 1, generator=torch.Generator().manual_seed(1))
    n = prompt['input_ids'].shape[1]
    full = torch.cat([prompt['input_ids'], rollout.ids], 1)
    logits = reasoner.model(
        input_ids=full,
        pixel_values=prompt['pixel_values'],
        image_grid_thw=prompt['image_grid_thw']).logits[:, n - 1:-1]
    wrong = torch.log_softmax(logits.float(), -1).gather(-1, rollout.ids[..., None])[..., 0]
    right = reasoner.completion_logprobs(prompt, rollout.ids)
    assert (wrong - right).abs().max() > 1e-3


def test_greedy_sampling_equals_transformers_generate(reasoner, prompt):
    ours = reasoner.sample(prompt, 1, max_new_tokens=12, greedy=True)
    theirs = reasoner.model.generate(
        **prompt, max_new_tokens=12, do_sample=False, suppress_tokens=reasoner.suppressed)
    expected = theirs[0, prompt['input_ids'].shape[1]:]
    assert ours.ids[0, :len(expected)].tolist() == expected.tolist()


def test_group_shares_one_prefill(reasoner, prompt, monkeypatch):
    calls = []
    original = QwenReasoner.prefill

    def counting(model, p):
        calls.append(p['input_ids'].shape[0])
        return original(model, p)

    monkeypatch.setattr(QwenReasoner, 'prefill', staticmethod(counting))
    rollout = reasoner.sample(prompt, 8, max_new_tokens=4)
    assert rollout.ids.shape == (8, 4) and calls == [1]  # one batch-1 prefill for G = 8
    reasoner.completion_logprobs(prompt, rollout.ids)
    assert calls == [1, 1]


def test_sampled_vision_tokens_are_suppressed(reasoner, prompt):
    rollout = reasoner.sample(
        prompt, 8, max_new_tokens=24, generator=torch.Generator().manual_seed(2))
    for token in reasoner.suppressed:
        assert not (rollout.ids == token).any()


def test_reference_under_lora_is_the_adapter_disabled_model(qwen_dir, prompt):
    lora = MODELS.build(
        dict(
            type='QwenReasoner',
            pretrained=qwen_dir,
            dtype='float32',
            lora=dict(r=4),
            max_new_tokens=8))
    assert lora.reference_model is None
    trainable = [n for n, p in lora.model.named_parameters() if p.requires_grad]
    assert trainable and all('lora_' in n for n in trainable)
    with torch.no_grad():
        for name, param in lora.model.named_parameters():
            if 'lora_B' in name:
                param.normal_(0, 0.5)
    ids = lora.sample(prompt, 2, generator=torch.Generator().manual_seed(0)).ids
    policy = lora.completion_logprobs(prompt, ids)
    with lora.reference() as reference:
        ref = lora.completion_logprobs(prompt, ids, model=reference)
    base = QwenReasoner(qwen_dir, dtype='float32', reference=False)
    assert torch.allclose(ref, base.completion_logprobs(prompt, ids), atol=1e-5)
    assert not torch.allclose(ref, policy, atol=1e-3)
    assert torch.equal(lora.completion_logprobs(prompt, ids), policy)  # adapters back on


def test_full_fine_tuning_reference_is_a_frozen_copy_synced_once(qwen_dir):
    reasoner = QwenReasoner(qwen_dir, dtype='float32')
    assert all(not p.requires_grad for p in reasoner.reference_model.parameters())
    assert not bool(reasoner.reference_synced)
    with torch.no_grad():
        next(reasoner.model.parameters()).add_(1.0)
    reasoner.sync_reference()
    first = next(reasoner.reference_model.parameters()).clone()
    assert torch.equal(first, next(reasoner.model.parameters()))
    with torch.no_grad():
        next(reasoner.model.parameters()).add_(1.0)
    reasoner.sync_reference()  # already synced: the reference stays the starting policy
    assert torch.equal(next(reasoner.reference_model.parameters()), first)
    state = reasoner.state_dict()
    assert 'reference_synced' in state and any(k.startswith('reference_model.') for k in state)
