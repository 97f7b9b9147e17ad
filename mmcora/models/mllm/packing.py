"""Shared-prefix packing: all queries of an image in one sequence, the prefix once.

Every prompt on an image starts with the same prefix (system prompt, ``USER:``, the image
tokens: about 615 tokens for LLaVA-1.5, 576 of them image tokens), and a query's suffix (its
instruction, ``ASSISTANT:``, the answer) is some 20-60 tokens. Run as separate sequences, three
queries on an image compute the prefix three times. Packed, the image's row is::

    [ prefix | suffix of query 1 | suffix of query 2 | ... | padding ]

with an attention mask under which the prefix is causal as before and each suffix token sees
the whole prefix and the earlier tokens of its own suffix, never another query's; positions
restart after the prefix for every suffix (query ``q``'s ``j``-th token is at ``Lp + j``, as in
its own sequence). Every token then has exactly the keys, values and positions it has in its own
sequence, so the hidden states, the losses and the gradients are those of separate sequences
(up to float summation order), and the prefix's gradient is the sum over its queries, as the
shared prefix embeddings receive it there.

:func:`pack_queries` makes the layout; :func:`attention_bias` the mask, as the additive bias
that both the eager and the SDPA attention of Hugging Face models take unchanged.
"""
from dataclasses import dataclass

import torch


@dataclass
class PackedLayout:
    """Where every token of a batch of packed sequences comes from and goes.

    Attributes:
        images: (R,) image of each packed row (the images that have queries, ascending).
        source: (R, L) index of each packed token in the pool ``cat([prefix (R*Lp), suffix
            (Q*S), one zero row])``: the prefix of the row's image, then its queries' real
            suffix tokens, then the zero row for padding.
        segment: (R, L) 0 for the prefix, ``1 + q`` for query ``q``'s suffix, -1 for padding.
        positions: (R, L) position ids: ``0..Lp-1`` for the prefix, ``Lp + j`` for the
            ``j``-th token of each suffix, 0 for padding.
        target: (Q, S) index into the flattened packed tokens (R*L) of each query's suffix token
            ``j`` (padding of the suffix points at its query's first token: ignored by labels
            and by the ``[SEG]`` search, which read the suffix ids).
    """
    images: torch.Tensor
    source: torch.Tensor
    segment: torch.Tensor
    positions: torch.Tensor
    target: torch.Tensor


def pack_queries(prefix_len: int, suffix_mask: torch.Tensor,
                 image_index: torch.Tensor) -> PackedLayout:
    """The packed layout of queries on their images.

    Args:
        prefix_len (int): Length Lp of the shared prefix (image tokens expanded).
        suffix_mask (Tensor): (Q, S) 1 for the real tokens of each query's right-padded
            suffix.
        image_index (Tensor): (Q,) image of each query.

    Returns:
        PackedLayout: With R the number of distinct images in ``image_index`` and L the
        longest packed row, ``Lp + max over rows of the sum of their queries' lengths``.
    """
    device = suffix_mask.device
    num_queries, width = suffix_mask.shape
    lengths = suffix_mask.sum(1).tolist()
    images = torch.unique(image_index)
    rows = {int(b): r for r, b in enumerate(images.tolist())}
    per_row = [[] for _ in rows]
    for q, b in enumerate(image_index.tolist()):
        per_row[rows[b]].append(q)
    row_len = [prefix_len + sum(lengths[q] for q in qs) for qs in per_row]
    total = max(row_len)
    pad_source = len(rows) * prefix_len + num_queries * width  # the zero row of the pool
    source = torch.full((len(rows), total), pad_source, dtype=torch.long)
    segment = torch.full((len(rows), total), -1, dtype=torch.long)
    positions = torch.zeros((len(rows), total), dtype=torch.long)
    target = torch.zeros((num_queries, width), dtype=torch.long)
    prefix_pos = torch.arange(prefix_len)
    for r, qs in enumerate(per_row):
        source[r, :prefix_len] = r * prefix_len + prefix_pos
        segment[r, :prefix_len] = 0
        positions[r, :prefix_len] = prefix_pos
        at = prefix_len
        for q in qs:
            n = lengths[q]
            span = torch.arange(n)
            source[r, at:at + n] = len(rows) * prefix_len + q * width + span
            segment[r, at:at + n] = 1 + q
            positions[r, at:at + n] = prefix_len + span
            target[q, :n] = r * total + at + span
            target[q, n:] = r * total + at
            at += n
    return PackedLayout(
        images.to(device), source.to(device), segment.to(device), positions.to(device),
        target.to(device))


def attention_bias(segment: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The packed rows' attention as an additive bias.

    A token at ``t`` sees the key at ``k <= t`` when the key is in the prefix or in the same
    suffix as ``t``. A padding token sees the prefix and itself (so that no softmax row is
    empty); nothing real sees padding.

    Args:
        segment (Tensor): (R, L) from :class:`PackedLayout`.
        dtype (torch.dtype): Dtype of the attention scores.

    Returns:
        Tensor: (R, 1, L, L) with 0 where attention is allowed and the dtype's lowest value
        elsewhere.
    """
    length = segment.shape[1]
    pos = torch.arange(length, device=segment.device)
    causal = pos.view(1, -1) <= pos.view(-1, 1)  # (L_query, L_key)
    seg_q, seg_k = segment.unsqueeze(2), segment.unsqueeze(1)
    allowed = causal & ((seg_k == 0) | (seg_k == seg_q))
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=segment.device)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=segment.device)
    bias.masked_fill_(~allowed, torch.finfo(dtype).min)
    return bias.unsqueeze(1)


def gather_packed(pool_prefix: torch.Tensor, pool_suffix: torch.Tensor,
                  layout: PackedLayout) -> torch.Tensor:
    """The packed input embeddings.

    Args:
        pool_prefix (Tensor): (R, Lp, D) prefix embeddings of ``layout.images``.
        pool_suffix (Tensor): (Q, S, D) suffix embeddings.
        layout (PackedLayout): From :func:`pack_queries`.

    Returns:
        Tensor: (R, L, D), differentiable in both inputs.
    """
    dim = pool_prefix.shape[-1]
    pool = torch.cat([
        pool_prefix.reshape(-1, dim),
        pool_suffix.reshape(-1, dim).to(pool_prefix.dtype),
        pool_prefix.new_zeros((1, dim))
    ])
    return pool[layout.source]


def unpack_suffixes(hidden: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    """(R, L, D) packed hidden states -> (Q, S, D), each query's suffix in its own row."""
    return hidden.reshape(-1, hidden.shape[-1])[layout.target]
