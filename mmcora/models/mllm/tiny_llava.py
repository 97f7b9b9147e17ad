"""A tiny LLaVA in Hugging Face format, made offline, for tests and the demo.

Nothing can be downloaded here, so the tiny model is *written* the way a real checkpoint is
distributed: ``LlavaForConditionalGeneration.save_pretrained`` with random (seeded) weights,
a tokenizer trained with the ``tokenizers`` library on the instruction vocabulary and saved in
Hugging Face format, and a ``CLIPImageProcessor`` config. The model wrapper then loads it
through exactly the code path of LLaVA-1.5-7B (``from_pretrained`` of a directory).

The default tokenizer is the toy's own (a ``tokenizers`` BPE, :func:`train_tokenizer`); the
spec's ``tokenizer='llama'`` writes a LLaMA-style one instead (:func:`train_llama_tokenizer`,
a SentencePiece model with LLaMA's settings loaded as ``LlamaTokenizerFast``), so that tests
see how LLaVA-1.5's tokenizer splits a prompt.
"""
import io
import json
import os.path as osp
import string
import tempfile
from typing import Dict, Iterator, Union

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
# spec['tokenizer'] (absent: 'tiny', so that the default spec and its caches are unchanged)
TOKENIZERS = ('tiny', 'llama')
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


def train_sentencepiece(vocab_size: int) -> bytes:
    """A SentencePiece BPE model with LLaMA's trainer settings, trained on
    :func:`instruction_corpus` (deterministic: one thread, every sentence, no sampling).

    Args:
        vocab_size (int): Pieces, the 3 specials and the 256 byte-fallback pieces included.

    Returns:
        bytes: The serialized model (a ``tokenizer.model`` file's content).
    """
    import sentencepiece as spm
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(instruction_corpus())),
        model_writer=model,
        model_type='bpe',
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # the corpus may support fewer merges than a big vocab_size
        character_coverage=1.0,
        byte_fallback=True,
        add_dummy_prefix=True,
        split_digits=True,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        normalization_rule_name='identity',
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2)
    return model.getvalue()


def train_llama_tokenizer(vocab_size: int, legacy: bool = True):
    """A LLaMA-style tokenizer: :func:`train_sentencepiece`'s model converted to
    ``transformers.LlamaTokenizerFast`` (``from_slow``), with llava-hf's additions: ``<image>`` as
    a special token and a ``<pad>`` pad token. It adds bos, not eos.

    Args:
        vocab_size (int): Size of the SentencePiece vocabulary (before the two additions).
        legacy (bool): True: the conversion LLaMA-1/2 checkpoints (and LLaVA-1.5's, Vicuna-based)
            ship in ``tokenizer.json``, transformers 4's ``legacy`` one: SentencePiece's dummy
            prefix as a normalizer, a ``▁`` before every stretch of text between special tokens,
            even one that starts with a space, exactly as ``sentencepiece`` tokenizes. A LLaVA
            directory's ``tokenizer.json`` is loaded as it is (``AutoTokenizer`` gives
            ``TokenizersBackend`` for ``llava``). False: transformers 5's own ``LlamaTokenizerFast``
            (a Metaspace pre-tokenizer, a ``▁`` only at the start and not before a space).

    Returns:
        LlamaTokenizerFast: The tokenizer.
    """
    from tokenizers import Tokenizer
    from transformers import LlamaTokenizerFast
    options = dict(legacy=legacy, add_bos_token=True, add_eos_token=False)
    with tempfile.TemporaryDirectory() as folder:
        with open(osp.join(folder, 'tokenizer.model'), 'wb') as f:
            f.write(train_sentencepiece(vocab_size))
        tokenizer = LlamaTokenizerFast.from_pretrained(folder, from_slow=True, **options)
    if legacy:
        state = json.loads(tokenizer.backend_tokenizer.to_str())
        state['normalizer'] = dict(
            type='Sequence',
            normalizers=[
                dict(type='Prepend', prepend='▁'),
                dict(type='Replace', pattern=dict(String=' '), content='▁')
            ])
        state['pre_tokenizer'] = None
        tokenizer = LlamaTokenizerFast(
            tokenizer_object=Tokenizer.from_str(json.dumps(state)), **options)
    tokenizer.add_special_tokens({'additional_special_tokens': ['<image>'], 'pad_token': '<pad>'})
    return tokenizer


def make_tokenizer(spec: Dict[str, Union[int, str]]):
    """The tokenizer that ``spec['tokenizer']`` names (absent: the toy's own)."""
    kind = spec.get('tokenizer', 'tiny')
    if kind not in TOKENIZERS:
        raise ValueError(f'unknown tiny LLaVA tokenizer {kind!r}; choose one of {TOKENIZERS}')
    if kind == 'llama':
        return train_llama_tokenizer(spec['vocab_size'])
    return train_tokenizer(spec['vocab_size'])


def write_tiny_llava(path: str, **spec: Union[int, str]) -> None:
    """Write a tiny LLaVA directory (weights, tokenizer, image processor) at ``path``.

    Args:
        path (str): The directory.
        **spec (int | str): :data:`DEFAULT_SPEC` overrides, and ``tokenizer`` (one of
            :data:`TOKENIZERS`; default ``'tiny'``).
    """
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)
    spec = tiny_spec(**spec)
    tokenizer = make_tokenizer(spec)
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
    write_manifest(path, MANIFEST, spec)


def tiny_spec(**spec: Union[int, str]) -> Dict[str, Union[int, str]]:
    """The complete manifest of the tiny LLaVA with these overrides (format version too);
    ``tokenizer='tiny'``, the default, is left out (the default spec's manifest is unchanged)."""
    spec = {**DEFAULT_SPEC, **spec}
    if spec.get('tokenizer') == 'tiny':
        del spec['tokenizer']
    return dict(format_version=FORMAT_VERSION, **spec)


def ensure_tiny_llava(path: str, **spec: Union[int, str]) -> str:
    """Write the tiny LLaVA at ``path`` unless an identical one is there (atomic, rank-safe)."""
    return ensure_tiny_checkpoint(path, MANIFEST, tiny_spec(**spec),
                                  lambda folder: write_tiny_llava(folder, **spec), 'tiny LLaVA')
