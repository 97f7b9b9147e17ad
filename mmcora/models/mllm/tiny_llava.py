"""A tiny LLaVA in Hugging Face format, made offline, for tests and the demo.

Nothing can be downloaded here, so the tiny model is *written* the way a real checkpoint is
distributed: ``LlavaForConditionalGeneration.save_pretrained`` with random (seeded) weights,
a tokenizer trained with the ``tokenizers`` library on the instruction vocabulary and saved in
Hugging Face format, and a ``CLIPImageProcessor`` config. The model wrapper then loads it
through exactly the code path of LLaVA-1.5-7B (``from_pretrained`` of a directory).
"""
import string
from typing import Dict, Iterator

import torch

from ...instructions.vocabulary import (ANSWERS, ATTRIBUTE_TEMPLATES, CONDITIONAL_TEMPLATES,
                                        QUERY_BANK_TEMPLATES, RELATION_PHRASES, SEMANTIC_TEMPLATES,
                                        VOCABULARIES)
from ...utils.tiny_checkpoint import ensure_tiny_checkpoint, write_manifest

MANIFEST = 'mmcora_tiny.json'
FORMAT_VERSION = 1
SYSTEM_PROMPT = ('A chat between a curious human and an artificial intelligence assistant. '
                 "The assistant gives helpful, detailed, and polite answers to the human's "
                 'questions.')
DEFAULT_SPEC: Dict[str, int] = dict(
    vocab_size=1024,
    hidden_size=64,
    intermediate_size=128,
    num_layers=2,
    num_heads=4,
    vision_hidden_size=32,
    vision_layers=2,
    vision_heads=2,
    image_size=56,
    patch_size=14,
    seed=0)


def instruction_corpus() -> Iterator[str]:
    """Every sentence our templates can produce, plus the chat scaffolding."""
    yield SYSTEM_PROMPT + ' USER: ASSISTANT:'
    yield from ANSWERS
    for vocabulary in VOCABULARIES.values():
        for name, (description, synonym) in vocabulary.items():
            for template in SEMANTIC_TEMPLATES:
                yield template.format(name=name)
            for template in ATTRIBUTE_TEMPLATES:
                yield template.format(description=description)
            for template in QUERY_BANK_TEMPLATES:
                yield template.format(name=name, synonym=synonym, description=description)
            for template in CONDITIONAL_TEMPLATES:
                for phrase in RELATION_PHRASES.values():
                    yield template.format(target=name, relation=phrase, anchor=synonym)


def train_tokenizer(vocab_size: int):
    """A BPE tokenizer (Metaspace, like LLaMA's) covering all printable ASCII."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    backend = Tokenizer(models.BPE(unk_token='<unk>'))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=['<unk>', '<s>', '</s>', '<pad>'],
        initial_alphabet=list(string.printable.strip()) + ['▁'],
        show_progress=False)
    backend.train_from_iterator(list(instruction_corpus()), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token='<s>',
        eos_token='</s>',
        unk_token='<unk>',
        pad_token='<pad>')
    tokenizer.add_special_tokens({'additional_special_tokens': ['<image>']})
    return tokenizer


def write_tiny_llava(path: str, **spec: int) -> None:
    """Write a tiny LLaVA directory (weights, tokenizer, image processor) at ``path``."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)
    spec = {**DEFAULT_SPEC, **spec}
    tokenizer = train_tokenizer(spec['vocab_size'])
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec['hidden_size'],
        intermediate_size=spec['intermediate_size'],
        num_hidden_layers=spec['num_layers'],
        num_attention_heads=spec['num_heads'],
        num_key_value_heads=spec['num_heads'],
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False)
    vision = CLIPVisionConfig(
        hidden_size=spec['vision_hidden_size'],
        intermediate_size=2 * spec['vision_hidden_size'],
        num_hidden_layers=spec['vision_layers'],
        num_attention_heads=spec['vision_heads'],
        image_size=spec['image_size'],
        patch_size=spec['patch_size'],
        projection_dim=spec['vision_hidden_size'])
    num_patches = (spec['image_size'] // spec['patch_size'])**2
    config = LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tokenizer.convert_tokens_to_ids('<image>'),
        vision_feature_layer=-2,
        vision_feature_select_strategy='default',
        image_seq_length=num_patches,
        tie_word_embeddings=False)
    # A forked RNG: writing the model on first use must not change the global stream, or
    # the first run of a config (which writes it) and later runs (which load it) would
    # initialise every other module (SAM, heads) differently under the same seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec['seed'])
        model = LlavaForConditionalGeneration(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    size = spec['image_size']
    CLIPImageProcessor(
        size={
            'shortest_edge': size
        }, crop_size={
            'height': size,
            'width': size
        }).save_pretrained(path)
    write_manifest(path, MANIFEST, dict(format_version=FORMAT_VERSION, **spec))


def tiny_spec(**spec: int) -> Dict[str, int]:
    """The complete manifest of the tiny LLaVA with these overrides (format version too)."""
    return dict(format_version=FORMAT_VERSION, **{**DEFAULT_SPEC, **spec})


def ensure_tiny_llava(path: str, **spec: int) -> str:
    """Write the tiny LLaVA at ``path`` unless an identical one is there (atomic, rank-safe)."""
    return ensure_tiny_checkpoint(path, MANIFEST, tiny_spec(**spec),
                                  lambda folder: write_tiny_llava(folder, **spec), 'tiny LLaVA')
