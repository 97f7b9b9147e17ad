"""``train_token_embeddings='added'``: only the added tokens' rows of ``embed_tokens`` and
``lm_head`` train (peft's trainable tokens), the rest stays base weights."""
import pytest
import torch

from mmcora.models.mllm import LlavaMLLM, write_tiny_llava


@pytest.fixture(scope='module')
def hf_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('hf') / 'llava')
    write_tiny_llava(path, seed=3)
    return path


def _build(hf_dir, seed=0, rows='added'):
    torch.manual_seed(seed)
    return LlavaMLLM(
        hf_dir, lora=dict(r=4, alpha=8, dropout=0.0), train_token_embeddings=rows).train()


def _effective(layer):
    """The weight a trainable-tokens layer computes with (base rows with the deltas in)."""
    return layer.get_merged_weights(layer.active_adapters).detach().clone()


def test_only_the_added_rows_train(hf_dir):
    mllm = _build(hf_dir)
    ids = [mllm.seg_token_id, mllm.anchor_mask_token_id, mllm.anchor_box_token_id]
    trainable = {n: p for n, p in mllm.named_parameters() if p.requires_grad}
    deltas = [n for n in trainable if 'trainable_tokens_delta' in n]
    assert len(deltas) == 2 and all(trainable[n].shape == (3, mllm.hidden_size) for n in deltas)
    assert all('lora_' in n for n in trainable if n not in deltas)
    full = _build(hf_dir, rows=True)
    saved = sum(p.numel()
                for p in full.parameters() if p.requires_grad) - sum(p.numel()
                                                                     for p in trainable.values())
    vocab = full.model.get_input_embeddings().num_embeddings
    assert saved == 2 * (vocab - 3) * mllm.hidden_size  # two matrices less three rows each
    layers = (mllm.model.get_input_embeddings(), mllm.model.get_output_embeddings())
    before = [_effective(layer) for layer in layers]
    features = mllm.image_features(torch.randn(1, 3, mllm.image_size, mllm.image_size))
    tokens = mllm.tokenize(['Segment the bus left of the car <anchor>.'], ['Sure, [SEG].'], 'cpu')
    optimizer = torch.optim.SGD(list(trainable.values()), lr=1.0)
    ce, states, found = mllm.forward_full(features, torch.tensor([0]), tokens,
                                          torch.randn(1, 2, mllm.hidden_size))
    assert found.all()
    (ce + states.sum()).backward()
    optimizer.step()
    for layer, old in zip(layers, before):
        new = _effective(layer)
        changed = (new != old).any(1).nonzero().squeeze(1).tolist()
        assert changed and set(changed) <= set(ids), changed
        assert torch.equal(layer.base_layer.weight,
                           old.index_copy(0, torch.tensor(ids), layer.base_layer.weight[ids]))


def test_frozen_base_does_not_depend_on_the_seed(hf_dir):
    # the added rows are base weights here: drawn at random, another seed's build would not
    # match a trainable-only checkpoint's fingerprint
    a, b = _build(hf_dir, seed=0), _build(hf_dir, seed=1)
    for get in ('get_input_embeddings', 'get_output_embeddings'):
        wa = getattr(a.model, get)().base_layer.weight
        wb = getattr(b.model, get)().base_layer.weight
        assert torch.equal(wa, wb), get


def test_unknown_setting_is_refused(hf_dir):
    with pytest.raises(ValueError, match="train_token_embeddings must be True .* got 'new'"):
        LlavaMLLM(hf_dir, train_token_embeddings='new')
