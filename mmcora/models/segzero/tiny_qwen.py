"""A tiny Qwen2.5-VL in Hugging Face format, made offline, for tests and the toy.

Nothing can be downloaded here, so the tiny reasoner is *written* the way Qwen2.5-VL-3B/7B are
distributed: ``Qwen2_5_VLForConditionalGeneration.save_pretrained`` with seeded random weights,
a byte-level BPE tokenizer trained offline with Qwen2's pre-tokenizer (digits one by one) and
its special tokens, Qwen2.5-VL's chat template, and the image and video processor configs.
:class:`~mmcora.models.segzero.QwenReasoner` loads it with ``from_pretrained`` of a directory,
the code path of the real models.

Only widths and depths shrink: the patch size (14), the 2 x 2 token merge, the temporal patch
(2), the window size (112 px), the processor's pixel limits and the tokenizer's behaviour are
Qwen2.5-VL's, so an 840 x 840 canvas still gives 900 image tokens.
"""
import string
from typing import Dict, Iterator

import torch

from ...utils.tiny_checkpoint import ensure_tiny_checkpoint, write_manifest
from ..mllm.tiny_llava import instruction_corpus
from .prompt import EXAMPLE_ANSWER, EXAMPLE_ANSWER_JSON, seg_zero_prompt

MANIFEST = 'mmcora_tiny.json'
FORMAT_VERSION = 1
DEFAULT_SYSTEM = 'You are a helpful assistant.'
# Qwen2.5-VL's added tokens, in its order (ids follow the trained vocabulary).
SPECIAL_TOKENS = ('<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>',
                  '<|object_ref_end|>', '<|box_start|>', '<|box_end|>', '<|quad_start|>',
                  '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>',
                  '<|image_pad|>', '<|video_pad|>')
# Qwen2's pre-tokenizer split: letters in words, every digit alone, punctuation runs.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
               r'[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+')
# Qwen2.5-VL's chat template (images as <|vision_start|><|image_pad|><|vision_end|>).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n" + DEFAULT_SYSTEM +
    "<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    '<|vision_start|><|image_pad|><|vision_end|>'
    "{% elif content['type'] == 'video' or 'video' in content %}"
    '<|vision_start|><|video_pad|><|vision_end|>'
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    '{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}')
DEFAULT_SPEC: Dict[str, int] = dict(
    vocab_size=1024,
    hidden_size=64,
    intermediate_size=128,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    vision_hidden_size=32,
    vision_intermediate_size=64,
    vision_depth=2,
    vision_heads=2,
    seed=0)


def reasoner_corpus() -> Iterator[str]:
    """The texts the tiny tokenizer is trained on: prompts, answers, the chat scaffolding."""
    yield DEFAULT_SYSTEM
    yield 'system user assistant'
    yield EXAMPLE_ANSWER
    yield EXAMPLE_ANSWER_JSON
    yield '<think> </think> <answer> </answer> ' + ' '.join(string.digits)
    for text in instruction_corpus():
        yield seg_zero_prompt(text)
        yield text


def train_tokenizer(vocab_size: int):
    """A byte-level BPE with Qwen2's pre-tokenizer and Qwen2.5-VL's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior='isolated'),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    ])
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False)
    backend.train_from_iterator(list(reasoner_corpus()), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token='<|im_end|>',
        pad_token='<|endoftext|>',
        additional_special_tokens=list(SPECIAL_TOKENS[1:]))
    tokenizer.add_special_tokens({'pad_token': '<|endoftext|>'})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def write_tiny_qwen(path: str, **spec: int) -> None:
    """Write a tiny Qwen2.5-VL directory (weights, tokenizer, processors) at ``path``.

    Args:
        path (str): The directory to write.
        **spec (int): Overrides of :data:`DEFAULT_SPEC`.
    """
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, Qwen2VLImageProcessor)
    from transformers.models.qwen2_vl import Qwen2VLVideoProcessor
    spec = {**DEFAULT_SPEC, **spec}
    tokenizer = train_tokenizer(spec['vocab_size'])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec['hidden_size'] // spec['num_heads']
    # Qwen2.5-VL's temporal / height / width split of the rotary frequencies (16, 24, 24 of
    # 64 at 7B), scaled to the tiny head: it must sum to head_dim / 2.
    half = head_dim // 2
    section = [half // 4, (half - half // 4) // 2]
    section.append(half - sum(section))
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec['hidden_size'],
        intermediate_size=spec['intermediate_size'],
        num_hidden_layers=spec['num_layers'],
        num_attention_heads=spec['num_heads'],
        num_key_value_heads=spec['num_kv_heads'],
        max_position_embeddings=4096,
        rope_parameters=dict(rope_type='default', rope_theta=1e6, mrope_section=section),
        bos_token_id=ids['<|endoftext|>'],
        eos_token_id=ids['<|im_end|>'],
        pad_token_id=ids['<|endoftext|>'],
        tie_word_embeddings=False)
    vision = dict(
        depth=spec['vision_depth'],
        hidden_size=spec['vision_hidden_size'],
        intermediate_size=spec['vision_intermediate_size'],
        num_heads=spec['vision_heads'],
        out_hidden_size=spec['hidden_size'],
        fullatt_block_indexes=[spec['vision_depth'] - 1])
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids['<|image_pad|>'],
        video_token_id=ids['<|video_pad|>'],
        vision_start_token_id=ids['<|vision_start|>'],
        vision_end_token_id=ids['<|vision_end|>'],
        tie_word_embeddings=False)
    # A forked RNG: writing the model on first use must not move the global random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec['seed'])
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids['<|im_end|>']
    model.generation_config.pad_token_id = ids['<|endoftext|>']
    model.save_pretrained(path)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(path)
    write_manifest(path, MANIFEST, dict(format_version=FORMAT_VERSION, **spec))


def tiny_qwen_spec(**spec: int) -> Dict[str, int]:
    """The complete manifest of the tiny Qwen2.5-VL with these overrides (format version too)."""
    return dict(format_version=FORMAT_VERSION, **{**DEFAULT_SPEC, **spec})


def ensure_tiny_qwen(path: str, **spec: int) -> str:
    """Write the tiny Qwen2.5-VL at ``path`` unless an identical one is there (atomic).

    Args:
        path (str): Where the directory goes.
        **spec (int): Overrides of :data:`DEFAULT_SPEC`.

    Returns:
        str: ``path``.

    Raises:
        FileExistsError: ``path`` holds something else (another spec, or not a tiny model).
    """
    return ensure_tiny_checkpoint(path, MANIFEST, tiny_qwen_spec(**spec),
                                  lambda folder: write_tiny_qwen(folder, **spec), 'tiny Qwen2.5-VL')
