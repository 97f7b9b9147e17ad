"""LLaVA-1.5's prompt template and its tokenization into the shared prefix and query suffixes.

Every prompt on an image is ``<system prompt> USER: <image>\n<query> ASSISTANT: <answer></s>``;
the part up to ``<image>\n`` is the same for all queries on the image (the shared prefix, with
the image placeholder expanded to the vision tower's tokens), the rest is the query's suffix.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

IGNORE = -100

IMAGE_PLACEHOLDER = '<image>'


def chat_prefix(system_prompt: str) -> str:
    """The text every prompt on an image starts with, ``<system prompt> USER: <image>\n``."""
    return f'{system_prompt} USER: {IMAGE_PLACEHOLDER}\n'


def expand_image_token(ids: List[int], image_token_id: int, num_image_tokens: int) -> List[int]:
    """Replace the one image placeholder in ``ids`` by ``num_image_tokens`` of them."""
    at = ids.index(image_token_id)
    return ids[:at] + [image_token_id] * num_image_tokens + ids[at + 1:]


def chat_prefix_ids(tokenizer, system_prompt: str, image_token_id: int,
                    num_image_tokens: int) -> List[int]:
    """Ids of ``<system prompt> USER: <image>\n`` with the image placeholder expanded to
    ``num_image_tokens`` image tokens (``image_token_id`` < 0: text only, ``... USER:``)."""
    if image_token_id < 0:
        return tokenizer(f'{system_prompt} USER:').input_ids
    return expand_image_token(
        tokenizer(chat_prefix(system_prompt)).input_ids, image_token_id, num_image_tokens)


def encode_turn(tokenizer, text: str, answer: Optional[str]) -> Tuple[List[int], List[int]]:
    """Ids and labels of the turn after the prefix, ``<text> ASSISTANT: <answer></s>``, with
    the query and the answer tokenized apart (labels: the answer's ids and eos, IGNORE
    elsewhere; no answer: the query alone).

    This is the toy foundation LLaVA's pretraining format (:mod:`..foundation.llava_pretrain`),
    kept as it is so that the cached toy LLaVAs stay valid. :class:`LlavaMLLM` tokenizes each
    conversation as one string instead (:func:`encode_conversation`): a tokenizer that puts a
    ``▁`` before every separately tokenized string (SentencePiece's dummy prefix) gives the
    suffix and the answer tokens that the one-string template would not have.
    """
    ids = tokenizer(text + ' ASSISTANT:', add_special_tokens=False).input_ids
    labels = [IGNORE] * len(ids)
    if answer is not None:
        reply = tokenizer(' ' + answer, add_special_tokens=False).input_ids
        reply.append(tokenizer.eos_token_id)
        ids, labels = ids + reply, labels + reply
    return ids, labels


def encode_conversation(tokenizer,
                        system_prompt: str,
                        text: str,
                        answer: Optional[str] = None,
                        name: str = 'the query') -> Tuple[List[int], List[int], List[int]]:
    """Tokenize one conversation as LLaVA-1.5 does: the whole string at once.

    The string is ``<system prompt> USER: <image>\n<text> ASSISTANT: <answer>`` (without an
    answer it ends at ``ASSISTANT:``, the generation prompt), tokenized in one call, as
    llava-hf's processor does, and split by character offsets into the shared prefix (the
    tokens up to and including those of ``<image>\n``) and the query's suffix. With an answer,
    eos is appended and the labels are the tokens after ``ASSISTANT:`` (the answer's, with the
    space before it: part of its first token, or a ``▁`` of its own before a special token
    such as ``[SEG]``) and eos, IGNORE elsewhere; the unlabeled tokens are then the generation
    prompt's, so what generation has to emit first is what teacher forcing trains.

    Args:
        tokenizer (PreTrainedTokenizerFast): A fast tokenizer (offset mappings are needed).
        system_prompt (str): Text before ``USER:``.
        text (str): The instruction (anchor placeholders already replaced by their tokens).
        answer (str, optional): The answer to teacher-force, or None (generation).
        name (str): The query's name for error messages.

    Returns:
        tuple[list[int], list[int], list[int]]: The prefix ids (one image placeholder, not
        expanded), the suffix ids and the suffix labels.

    Raises:
        TypeError: The tokenizer is not a fast one.
        ValueError: A token spans the end of the prefix, or both ``ASSISTANT:`` and the
            answer, naming the query.
    """
    if not getattr(tokenizer, 'is_fast', False):
        raise TypeError(f'LLaVA prompts are tokenized with character offsets, which only fast '
                        f'(tokenizers-backed) tokenizers give; got {type(tokenizer).__name__}')
    prefix_end = len(chat_prefix(system_prompt))
    prompt = f'{chat_prefix(system_prompt)}{text} ASSISTANT:'
    full = prompt if answer is None else f'{prompt} {answer}'
    encoded = tokenizer(full, return_offsets_mapping=True)
    ids, spans = list(encoded.input_ids), [tuple(span) for span in encoded.offset_mapping]
    while len(ids) > 1 and spans[-1] == (0, 0) and ids[-1] in tokenizer.all_special_ids:
        ids.pop()  # appended by the post-processor (add_eos_token): ours comes below
        spans.pop()
    split = 0
    while split < len(ids) and spans[split][1] <= prefix_end:
        split += 1
    if any(start < prefix_end for start, _ in spans[split:]):
        raise ValueError(f'{name}: a token spans the end of the shared prefix '
                         f'({full[prefix_end - 8:prefix_end + 8]!r}); the prompt cannot be '
                         'split into the image prefix and the query')
    prefix, suffix = ids[:split], ids[split:]
    labels = [IGNORE] * len(suffix)
    if answer is not None:
        for i, (start, end) in enumerate(spans[split:]):
            if end > len(prompt):  # after 'ASSISTANT:': the space and the answer
                if start < len(prompt):
                    raise ValueError(f'{name}: a token spans both "ASSISTANT:" and the answer '
                                     f'({full[start:end]!r})')
                labels[i] = suffix[i]
        suffix.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    return prefix, suffix, labels


@dataclass
class QueryTokens:
    """Tokenized query suffixes, right-padded.

    Attributes:
        ids: (Q, L) token ids, padded with the pad id.
        labels: (Q, L) answer-token targets, IGNORE elsewhere (None without answers).
        mask: (Q, L) 1 for real tokens.
    """
    ids: torch.Tensor
    labels: Optional[torch.Tensor]
    mask: torch.Tensor

    def __getitem__(self, rows) -> 'QueryTokens':
        """The queries ``rows`` (a slice or an index tensor) as their own ``QueryTokens``."""
        labels = None if self.labels is None else self.labels[rows]
        return QueryTokens(self.ids[rows], labels, self.mask[rows])
