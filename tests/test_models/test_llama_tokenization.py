"""Prompt tokenization with a LLaMA-style SentencePiece tokenizer, as LLaVA-1.5 has.

LLaVA-1.5's template is one string, ``<system> USER: <image>\\n<query> ASSISTANT: <answer></s>``,
tokenized at once. Tokenizing the query and the answer apart (``encode_turn``, the toy
foundation LLaVA's format) gives other tokens with a LLaMA tokenizer: SentencePiece puts a ``▁``
before every string it is given (its dummy prefix), so a separately tokenized answer starts with
a lone ``▁`` and the query's first word gets a ``▁`` that follows ``\\n`` nowhere in LLaVA's
prompts. ``encode_conversation`` (what ``LlavaMLLM`` uses) tokenizes the whole string.
"""

import pytest
import torch

from mmcora.instructions.vocabulary import ANSWERS
from mmcora.models.mllm import LlavaMLLM, write_tiny_llava
from mmcora.models.mllm.prompt import IGNORE, chat_prefix, encode_conversation, encode_turn
from mmcora.models.mllm.tiny_llava import (SYSTEM_PROMPT, instruction_corpus, tiny_spec,
                                           train_llama_tokenizer, train_sentencepiece,
                                           train_tokenizer)
from mmcora.utils.special_tokens import (ANCHOR_BOX_TOKEN, ANCHOR_MASK_TOKEN, ANCHOR_PLACEHOLDER,
                                         DEFAULT_ANSWER, SEG_TOKEN)

QUERY = 'Can you segment the car that is to the left of the person <anchor>?'


def _with_mmcora_tokens(tokenizer):
    # as LlavaMLLM._add_tokens
    tokenizer.add_tokens([SEG_TOKEN, ANCHOR_MASK_TOKEN, ANCHOR_BOX_TOKEN], special_tokens=True)
    return tokenizer


@pytest.fixture(scope='module')
def tokenizers():
    return dict(
        llama=_with_mmcora_tokens(train_llama_tokenizer(1024)),
        llama_nonlegacy=_with_mmcora_tokens(train_llama_tokenizer(1024, legacy=False)))


def _pieces(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


def _conversation(text, answer=None):
    prompt = f'{chat_prefix(SYSTEM_PROMPT)}{text} ASSISTANT:'
    return prompt if answer is None else f'{prompt} {answer}'


def _anchors(text):
    return text.replace(ANCHOR_PLACEHOLDER, ANCHOR_MASK_TOKEN + ANCHOR_BOX_TOKEN)


def test_llama_tokenizer_is_llama_like_and_deterministic(tokenizers):
    import sentencepiece as spm
    from transformers import LlamaTokenizerFast
    model = train_sentencepiece(1024)
    assert model == train_sentencepiece(1024)
    llama = tokenizers['llama']
    assert isinstance(llama, LlamaTokenizerFast) and llama.is_fast
    assert (llama.unk_token_id, llama.bos_token_id, llama.eos_token_id) == (0, 1, 2)
    assert llama('Segment the car.').input_ids[0] == llama.bos_token_id
    assert llama('Segment the car.').input_ids[-1] != llama.eos_token_id
    # byte fallback for '\n'; the legacy '▁' after a special token is LLaVA-1.5's 29871, 13
    nonlegacy = tokenizers['llama_nonlegacy']
    assert _pieces(llama,
                   llama('<image>\n',
                         add_special_tokens=False).input_ids) == ['<image>', '▁', '<0x0A>']
    assert _pieces(nonlegacy,
                   nonlegacy('<image>\n',
                             add_special_tokens=False).input_ids) == ['<image>', '<0x0A>']
    # the legacy conversion (LLaMA-1/2's tokenizer.json) tokenizes as SentencePiece does
    processor = spm.SentencePieceProcessor(model_proto=model)
    exact = tokenizers['llama']
    texts = list(instruction_corpus())[::37] + [' Sure, ', ' ' + DEFAULT_ANSWER[5:], 'a  b\n c']
    for text in texts:
        assert _pieces(exact,
                       exact(text, add_special_tokens=False).input_ids) == (processor.encode(
                           text, out_type=str)), text


def test_separate_tokenization_is_not_the_conversations(tokenizers):
    # The failure mode of encode_turn: SentencePiece's dummy prefix on each separately
    # tokenized string.
    exact = tokenizers['llama']
    text = _anchors(QUERY)
    ids, _ = encode_turn(exact, text, 'Sure, [SEG].')
    pieces = _pieces(exact, ids)
    at = pieces.index('▁Sure')
    assert pieces[at - 3:at + 1] == ['▁ASSISTANT', ':', '▁',
                                     '▁Sure']  # a lone '▁' before the answer
    _, suffix, _ = encode_conversation(exact, SYSTEM_PROMPT, text, 'Sure, [SEG].')
    pieces = _pieces(exact, suffix)
    at = pieces.index('▁Sure')
    assert pieces[at - 2:at + 1] == ['▁ASSISTANT', ':', '▁Sure']
    # every LLaMA tokenizer: the query's first word gets a '▁' that the one string (where it
    # follows '\n') does not give it
    for tokenizer in tokenizers.values():
        ids, _ = encode_turn(tokenizer, text, DEFAULT_ANSWER)
        _, suffix, _ = encode_conversation(tokenizer, SYSTEM_PROMPT, text, DEFAULT_ANSWER)
        assert _pieces(tokenizer, ids)[0] == '▁Can'
        assert not _pieces(tokenizer, suffix)[0].startswith('▁')
        assert tokenizer.decode(suffix[:suffix.index(_pieces_id(tokenizer, '▁you'))]) == 'Can'


def _pieces_id(tokenizer, piece):
    return tokenizer.convert_tokens_to_ids(piece)


@pytest.mark.parametrize('kind', ['llama', 'llama_nonlegacy'])
def test_conversation_is_the_one_string_tokenization(tokenizers, kind):
    tokenizer = tokenizers[kind]
    shared = tokenizer(chat_prefix(SYSTEM_PROMPT)).input_ids
    assert shared[0] == tokenizer.bos_token_id and shared.count(_pieces_id(tokenizer,
                                                                           '<image>')) == 1
    queries = [_anchors(t) for t in list(instruction_corpus())[len(ANSWERS) + 1::53]]
    for text in queries + [_anchors(QUERY)]:
        for answer in [*ANSWERS, None]:
            prefix, suffix, labels = encode_conversation(tokenizer, SYSTEM_PROMPT, text, answer)
            whole = tokenizer(_conversation(text, answer)).input_ids
            eos = [] if answer is None else [tokenizer.eos_token_id]
            assert prefix == shared and prefix + suffix == whole + eos, (text, answer)
            assert len(labels) == len(suffix)
            if answer is None:
                assert set(labels) == {IGNORE}
                assert _pieces(tokenizer, suffix)[-1] == ':'  # the prompt ends at 'ASSISTANT:'


@pytest.mark.parametrize('kind', ['llama', 'llama_nonlegacy'])
def test_answer_loss_is_on_the_answer_and_eos(tokenizers, kind):
    tokenizer = tokenizers[kind]
    text = _anchors(QUERY)
    for answer in ANSWERS:
        _, suffix, labels = encode_conversation(tokenizer, SYSTEM_PROMPT, text, answer)
        start = next(i for i, label in enumerate(labels) if label != IGNORE)
        assert labels[start:] == suffix[start:]  # a contiguous tail, eos last
        assert suffix[-1] == tokenizer.eos_token_id
        # nothing of the instruction or of 'ASSISTANT:' carries the loss: the unlabeled tokens
        # are the generation prompt's
        _, prompt, _ = encode_conversation(tokenizer, SYSTEM_PROMPT, text)
        assert suffix[:start] == prompt and _pieces(tokenizer, prompt)[-1] == ':'
        # (legacy decodes the '▁' after a special token as a space)
        assert tokenizer.decode(suffix[start:-1]).replace(' ', '') == answer.replace(' ', '')
        seg = suffix.index(_pieces_id(tokenizer, SEG_TOKEN))
        assert seg >= start and all(label != IGNORE for label in labels[start:seg + 1])
    # exactly, for the default answer and one with words before [SEG] (the space before
    # '[SEG]' is a piece of its own, labeled: generation, whose prompt ends at 'ASSISTANT:', has
    # to emit it; the legacy tokenizer, as SentencePiece, puts a '▁' after '[SEG]' too)
    dot = ['▁', '.'] if kind == 'llama' else ['.']
    for answer, expected in ((DEFAULT_ANSWER, ['▁', '[SEG]', *dot, '</s>']),
                             ('Sure, [SEG].', ['▁Sure', ',', '▁', '[SEG]', *dot, '</s>'])):
        _, suffix, labels = encode_conversation(tokenizer, SYSTEM_PROMPT, text, answer)
        labeled = [i for i, label in enumerate(labels) if label != IGNORE]
        assert _pieces(tokenizer, [suffix[i] for i in labeled]) == expected
        assert _pieces(tokenizer, suffix[labeled[0] - 2:labeled[0]]) == ['▁ASSISTANT', ':']


def test_slow_tokenizers_are_refused():

    class Slow:
        is_fast = False

    with pytest.raises(TypeError, match='fast'):
        encode_conversation(Slow(), SYSTEM_PROMPT, 'Segment the car.', DEFAULT_ANSWER)


def test_toy_tokenizer_differs_only_in_the_first_word():
    # The toy tokenizer (Metaspace, '\n' unknown) gives the one string the separate
    # tokenization's ids except for the query's first word: apart, 'Can' is '▁Can'; in the one
    # string it follows '\n' and has no '▁' (as with LLaMA). So the toy keeps encode_turn
    # (LlavaMLLM(tiny=...) chooses tokenization='separate'); see LlavaMLLM.
    tokenizer = _with_mmcora_tokens(train_tokenizer(1024))
    shared = tokenizer(chat_prefix(SYSTEM_PROMPT)).input_ids
    queries = [_anchors(t) for t in list(instruction_corpus())[len(ANSWERS) + 1::11]]
    assert len(queries) > 100
    for text in queries:
        word = text.split(' ')[0]
        for answer in [*ANSWERS, None]:
            old_ids, old_labels = encode_turn(tokenizer, text, answer)
            prefix, ids, labels = encode_conversation(tokenizer, SYSTEM_PROMPT, text, answer)
            assert prefix == shared
            first = len(ids) - len(old_ids) + 1  # pieces of the first word in the one string
            assert _pieces(tokenizer, old_ids[:1]) == ['▁' + word]
            assert tokenizer.decode(
                ids[:first]) == word and not _pieces(tokenizer, ids)[0].startswith('▁')
            assert ids[first:] == old_ids[1:] and labels[first:] == old_labels[1:]
            assert set(labels[:first]) == set(old_labels[:1]) == {IGNORE}


def test_toy_spec_is_unchanged_by_the_tokenizer_option():
    assert 'tokenizer' not in tiny_spec() and tiny_spec(tokenizer='tiny') == tiny_spec()
    assert tiny_spec(tokenizer='llama') == dict(tiny_spec(), tokenizer='llama')
    with pytest.raises(ValueError, match='unknown tiny LLaVA tokenizer'):
        write_tiny_llava('/nonexistent/never-written', tokenizer='gpt')


def test_toy_llava_keeps_the_separate_tokenization(tmp_path):
    mllm = LlavaMLLM(str(tmp_path / 'toy'), tiny=dict())
    assert mllm.tokenization == 'separate'
    text = _anchors(QUERY)
    tokens = mllm.tokenize([QUERY], ['Sure, [SEG].'], 'cpu')
    ids, labels = encode_turn(mllm.tokenizer, text, 'Sure, [SEG].')
    assert tokens.ids[0].tolist() == ids and tokens.labels[0].tolist() == labels
    with pytest.raises(ValueError, match='tokenization must be one of'):
        LlavaMLLM(str(tmp_path / 'toy'), tokenization='joint')


@pytest.fixture(scope='module')
def llama_llava(tmp_path_factory):
    # LLaVA-1.5's geometry (336 px, patch 14: 576 image tokens) with the LLaMA-style tokenizer
    path = str(tmp_path_factory.mktemp('hf') / 'llava-llama')
    write_tiny_llava(path, tokenizer='llama', image_size=336, seed=3)
    torch.manual_seed(0)
    return LlavaMLLM(path, lora=dict(r=4, alpha=8, dropout=0.0))


def test_llava_with_the_llama_tokenizer_trains_and_finds_seg(llama_llava):
    mllm = llama_llava.train()
    assert mllm.tokenization == 'conversation'
    # the directory's tokenizer.json, as loaded for a llava checkpoint, keeps SentencePiece's
    # dummy prefix
    sure = mllm.tokenizer(' Sure', add_special_tokens=False).input_ids
    assert mllm.tokenizer.convert_ids_to_tokens(sure) == ['▁', '▁Sure']
    assert mllm.num_image_tokens == 576 and len(mllm.prefix_ids('cpu')) > 600
    texts = [QUERY, 'Segment the sky.', 'Where is the bus in this image?']
    answers = ['Sure, the segmentation is [SEG].', DEFAULT_ANSWER, 'It is [SEG].']
    tokens = mllm.tokenize(texts, answers, 'cpu')
    image = mllm.image_token_id
    prefix = [i for i in mllm._prefix_ids if i != image]
    at = mllm._prefix_ids.index(image)
    prefix.insert(at, image)  # the prefix with one image placeholder
    for i, (text, answer) in enumerate(zip(texts, answers)):
        row = tokens.ids[i, :int(tokens.mask[i].sum())].tolist()
        whole = mllm.tokenizer(_conversation(_anchors(text), answer)).input_ids
        assert prefix + row == whole + [mllm.tokenizer.eos_token_id]
        labeled = tokens.labels[i][tokens.labels[i] != IGNORE].tolist()
        assert mllm.tokenizer.decode(labeled).replace(' ', '') == f'{answer}</s>'.replace(' ', '')
    features = mllm.image_features(torch.randn(2, 3, 336, 336))
    index = torch.tensor([0, 1, 1])
    anchors = torch.randn(3, 2, mllm.hidden_size)
    params = [p for p in mllm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    ce, states, found = mllm.forward_full(features, index, tokens, anchors)
    assert torch.isfinite(ce) and found.all() and states.shape == (3, mllm.hidden_size)
    (ce + states.sum() * 0).backward()
    lora_b = next(p for n, p in mllm.named_parameters() if 'lora_B' in n)  # (A's is 0 at B = 0)
    assert lora_b.grad is not None and lora_b.grad.abs().sum() > 0
    optimizer.step()
    optimizer.zero_grad()
    with torch.no_grad():
        after, states_after, _ = mllm.forward_full(features, index, tokens, anchors)
    assert after < ce
    mllm.eval()
    with torch.no_grad():
        ce_cached, seg_cached, found_cached, *_ = mllm.forward_cached(features, index, tokens,
                                                                      anchors)
    torch.testing.assert_close(ce_cached, after)
    torch.testing.assert_close(seg_cached, states_after, atol=1e-5, rtol=1e-4)
    # generation prompts end at 'ASSISTANT:'
    prompts = mllm.tokenize(texts, None, 'cpu')
    for i in range(3):
        row = prompts.ids[i, :int(prompts.mask[i].sum())].tolist()
        assert mllm.tokenizer.convert_ids_to_tokens(row)[-1] == ':'
        assert prefix + row == mllm.tokenizer(_conversation(_anchors(texts[i]))).input_ids
    generated, _, _ = mllm.generate(features, index, prompts, max_new_tokens=2)
    assert len(generated) == 3
