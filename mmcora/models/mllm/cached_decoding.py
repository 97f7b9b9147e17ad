"""Evaluation of :class:`~.llava_mllm.LlavaMLLM`: every image's prefix key/value cache computed
once, the queries' suffixes run against it a bounded number at a time (teacher forcing and greedy
generation).

Each query holds its own copy of its image's prefix keys and values while it runs (about 0.3 GB
at 7B in bf16), so ``eval_query_chunk`` queries run at once whatever the number of queries per
image.
"""
from typing import List, Optional, Tuple

import torch

from .prompt import QueryTokens


class CachedDecodingMixin:
    """Prefix-cached evaluation for :class:`~.llava_mllm.LlavaMLLM`.

    The host provides ``language_model``, ``model``, ``tokenizer``, ``compute_dtype``,
    ``eval_query_chunk``, ``seg_token_id``, ``_prefix_ids`` and the methods ``prefix_embeds``,
    ``suffix_embeds``, ``answer_loss``, ``seg_states`` and ``lm_logits``.
    """

    def prefix_cache(self, image_features: torch.Tensor):
        """The key/value cache of every image's prefix (B rows), computed once."""
        prefix = self.prefix_embeds(image_features)
        return self.language_model(inputs_embeds=prefix, use_cache=True).past_key_values

    def chunks(self, num_queries: int) -> List[slice]:
        """Slices of at most ``eval_query_chunk`` queries (the evaluation's memory bound)."""
        step = self.eval_query_chunk
        return [slice(start, start + step) for start in range(0, num_queries, step)]

    def forward_suffixes(self, prefix_cache, image_index: torch.Tensor, tokens: QueryTokens,
                         anchor_embeds: Optional[torch.Tensor]) -> tuple:
        """Suffixes against their images' rows of a prefix cache (one chunk of queries).

        The prefix cache is not changed: the rows of the chunk's images are selected into a
        cache of the chunk's own (Q key/value copies of the prefix: what
        ``eval_query_chunk`` bounds).

        Returns:
            The suffix hidden states (Q, S, D), the cache after the suffixes and the attention
            mask (Q, Lp + S) for generation.
        """
        from transformers import DynamicCache
        cache = DynamicCache(ddp_cache_data=[(layer.keys[image_index], layer.values[image_index])
                                             for layer in prefix_cache.layers])
        prefix_len = len(self._prefix_ids)
        mask = torch.cat([tokens.mask.new_ones((len(image_index), prefix_len)), tokens.mask], 1)
        positions = prefix_len + torch.arange(tokens.ids.shape[1], device=tokens.ids.device)
        out = self.language_model(
            inputs_embeds=self.suffix_embeds(tokens, anchor_embeds),
            attention_mask=mask,
            past_key_values=cache,
            use_cache=True,
            position_ids=positions.expand(len(image_index), -1))
        return out.last_hidden_state, out.past_key_values, mask

    def forward_cached(self,
                       image_features: torch.Tensor,
                       image_index: torch.Tensor,
                       tokens: QueryTokens,
                       anchor_embeds: Optional[torch.Tensor] = None):
        """Like :meth:`forward_full` (evaluation), with the image prefix's key/value cache
        computed once per image and the queries run in chunks of ``eval_query_chunk``.

        Returns:
            The three values of :meth:`forward_full`, plus the suffix hidden states (Q, S, D).
        """
        cache = self.prefix_cache(image_features)
        hidden = torch.cat([
            self.forward_suffixes(cache, image_index[part], tokens[part],
                                  None if anchor_embeds is None else anchor_embeds[part])[0]
            for part in self.chunks(len(image_index))
        ])
        return (self.answer_loss(hidden,
                                 tokens.labels), *self.seg_states(hidden, tokens.ids), hidden)

    @torch.no_grad()
    def generate(self,
                 image_features: torch.Tensor,
                 image_index: torch.Tensor,
                 tokens: QueryTokens,
                 anchor_embeds: Optional[torch.Tensor] = None,
                 max_new_tokens: int = 16) -> Tuple[List[str], torch.Tensor, torch.Tensor]:
        """Greedy decoding with the key/value cache, in chunks of ``eval_query_chunk``
        queries against the prefix cache computed once per image.

        Returns:
            The generated answers, the hidden state that emitted each query's first ``[SEG]``
            (Q, D) and whether one was emitted (Q,).
        """
        cache = self.prefix_cache(image_features)
        texts, seg, found = [], [], []
        for part in self.chunks(len(image_index)):
            out = self._generate_chunk(cache, image_index[part], tokens[part],
                                       None if anchor_embeds is None else anchor_embeds[part],
                                       max_new_tokens)
            texts += out[0]
            seg.append(out[1])
            found.append(out[2])
        return texts, torch.cat(seg), torch.cat(found)

    def _generate_chunk(self, prefix_cache, image_index: torch.Tensor, tokens: QueryTokens,
                        anchor_embeds: Optional[torch.Tensor],
                        max_new_tokens: int) -> Tuple[List[str], torch.Tensor, torch.Tensor]:
        """:meth:`generate` for one chunk of queries."""
        hidden, cache, mask = self.forward_suffixes(prefix_cache, image_index, tokens,
                                                    anchor_embeds)
        num = len(image_index)
        lengths = tokens.mask.sum(1)
        rows = torch.arange(num, device=hidden.device)
        state = hidden[rows, lengths - 1]
        seg = hidden.new_zeros((num, hidden.shape[-1]))
        found = torch.zeros(num, dtype=torch.bool, device=hidden.device)
        done = torch.zeros_like(found)
        generated = []
        position = mask.sum(1)  # next position of each row (prefix + its own suffix)
        for step in range(max_new_tokens):
            next_ids = self.lm_logits(state).argmax(-1)
            next_ids = torch.where(done, torch.full_like(next_ids, self.tokenizer.pad_token_id),
                                   next_ids)
            emits_seg = (next_ids == self.seg_token_id) & ~found & ~done
            seg[emits_seg] = state[emits_seg]
            found |= emits_seg
            generated.append(next_ids)
            done |= next_ids == self.tokenizer.eos_token_id
            if bool(done.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, (~done).long().unsqueeze(1)], dim=1)
            out = self.language_model(
                inputs_embeds=self.model.get_input_embeddings()(next_ids).unsqueeze(1).to(
                    self.compute_dtype),
                attention_mask=mask,
                past_key_values=cache,
                use_cache=True,
                position_ids=position.unsqueeze(1))
            cache, state = out.past_key_values, out.last_hidden_state[:, -1]
            position = position + 1
        texts = self.tokenizer.batch_decode(torch.stack(generated, 1), skip_special_tokens=False)
        return [self._clean(t) for t in texts], seg, found

    def _clean(self, text: str) -> str:
        for token in (self.tokenizer.eos_token, self.tokenizer.pad_token):
            text = text.replace(token, '')
        return text.strip()
