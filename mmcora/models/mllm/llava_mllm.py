"""LLaVA wrapper: [SEG] and anchor placeholder tokens, LoRA, shared-image-prefix forward.

The prompt of every query on an image starts with the same prefix (system prompt, ``USER:``,
the image tokens). Image features are computed once per image and placed into that prefix;
queries then differ only in their suffix (instruction with anchor placeholders, ``ASSISTANT:``,
answer). Training packs the queries of an image into one sequence with the prefix once
(:mod:`.packing`; the losses and gradients of separate sequences, gradient checkpointing
friendly); inference computes the prefix's key/value cache once per image and runs the queries'
suffixes against it, a bounded number at a time.

The ``[SEG]`` embedding is the last layer's hidden state (after the final norm) at the
position *before* ``[SEG]``: the state that predicts ``[SEG]`` (LISA's convention), which is
also what free generation has when it emits the token.
"""
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils import main_process_first
from ...utils.special_tokens import (ANCHOR_BOX_TOKEN, ANCHOR_MASK_TOKEN, ANCHOR_PLACEHOLDER,
                                     SEG_TOKEN)
from ..pretrained import check_hf_directory
from .cached_decoding import CachedDecodingMixin
from .packing import attention_bias, gather_packed, pack_queries, unpack_suffixes
from .prompt import (IGNORE, IMAGE_PLACEHOLDER, QueryTokens, chat_prefix, encode_conversation,
                     encode_turn, expand_image_token)
from .tiny_llava import SYSTEM_PROMPT, ensure_tiny_llava, tiny_spec

TOKENIZATIONS = ('conversation', 'separate')
HF_NAME = ('LLaVA', 'llava-1.5-7b-hf')  # what and an example, for messages


@MODELS.register_module()
class LlavaMLLM(CachedDecodingMixin, nn.Module):
    """A Hugging Face ``LlavaForConditionalGeneration`` prepared for reasoning segmentation.

    Args:
        pretrained (str): Directory in Hugging Face format (``save_pretrained`` layout), e.g.
            LLaVA-1.5-7B converted to HF (``llava-hf/llava-1.5-7b-hf``).
        tiny (dict, optional): If given, first write a tiny random-weight LLaVA with these
            :data:`~mmcora.models.mllm.tiny_llava.DEFAULT_SPEC` overrides at ``pretrained``
            (tests and the demo; nothing is downloaded).
        toy_pretrain (dict, optional): With ``tiny``, load the toy foundation LLaVA instead: the
            tiny one pretrained on the toy foundation corpus (CLIP crop and patch classification,
            projector alignment, instruction tuning) with these
            :class:`~mmcora.models.foundation.LLaVARecipe` overrides, made once on first use and
            cached by recipe (:func:`~mmcora.models.foundation.ensure_toy_llava`).
        lora (dict, optional): LoRA on the language model's projections (``r``, ``alpha``,
            ``dropout``, ``target_modules``); None trains no LoRA.
        train_token_embeddings (bool | str): True: train the full ``embed_tokens`` and
            ``lm_head`` (LISA), so the new tokens' rows learn; ``'added'``: train only the rows
            of the added tokens (``[SEG]`` and the anchor placeholders) in both, through peft's
            trainable tokens (``TrainableTokensConfig``), so the rest stays base weights and
            checkpoints hold three rows instead of two vocabulary-sized matrices (the added
            rows start at the mean of the others, so the frozen base does not depend on the
            seed); False: neither. Defaults to True.
        dtype (str): Dtype of the frozen weights and of the computation (``'bfloat16'`` for 7B on
            GPUs). Trainable parameters (LoRA, token embeddings, LM head) are kept in float32
            so that small AdamW steps are not rounded away (there is no master copy).
        gradient_checkpointing (bool): Recompute language-model activations in backward.
        max_length (int): Longest prompt (prefix with the image tokens expanded + query + answer)
            in tokens; LLaVA-1.5's prefix alone is about 615 (576 image tokens), and it was
            trained with 2048 (``model_max_length``).
        system_prompt (str): Text before ``USER:``.
        tokenization (str, optional): How prompts are tokenized: ``'conversation'``, each
            conversation as one string, LLaVA-1.5's template (:func:`encode_conversation`), or
            ``'separate'``, the query and the answer apart (:func:`encode_turn`), the format
            the toy foundation LLaVA is pretrained in. None: ``'separate'`` for a tiny LLaVA
            with the toy tokenizer (``tiny`` given, without ``tokenizer='llama'``: the toy
            figures were made so), ``'conversation'`` otherwise.
        packed_prefix (bool): Train with the queries of an image packed into one sequence, the
            prefix computed once (:mod:`.packing`); False runs every query as its own sequence
            (the same losses and gradients, the prefix's work once per query). Defaults to
            True.
        eval_query_chunk (int): Queries run at once against the prefix cache in evaluation:
            each holds its own copy of its image's prefix keys and values (about 0.3 GB at 7B
            in bf16), so this bounds evaluation memory whatever the number of queries per
            image. Defaults to 8.
        load_weights (bool): Load the weights of ``pretrained``; False builds the architecture
            of its ``config.json`` with random weights, on the meta device with nothing
            allocated (``tools/analysis/model_size.py``). Defaults to True.
    """

    def __init__(self,
                 pretrained: str,
                 tiny: Optional[dict] = None,
                 toy_pretrain: Optional[dict] = None,
                 lora: Optional[dict] = None,
                 train_token_embeddings: Union[bool, str] = True,
                 dtype: str = 'float32',
                 gradient_checkpointing: bool = False,
                 max_length: int = 2048,
                 system_prompt: str = SYSTEM_PROMPT,
                 tokenization: Optional[str] = None,
                 packed_prefix: bool = True,
                 eval_query_chunk: int = 8,
                 load_weights: bool = True) -> None:
        super().__init__()
        if train_token_embeddings not in (True, False, 'added'):
            raise ValueError('model.mllm.train_token_embeddings must be True (every row), '
                             f"'added' (the added tokens' rows) or False, got "
                             f'{train_token_embeddings!r}')
        if not isinstance(eval_query_chunk, int) or eval_query_chunk < 1:
            raise ValueError('model.mllm.eval_query_chunk must be a positive int, got '
                             f'{eval_query_chunk!r}')
        self.packed_prefix, self.eval_query_chunk = packed_prefix, eval_query_chunk
        if tokenization is None:
            toy = tiny is not None and tiny.get('tokenizer', 'tiny') == 'tiny'
            tokenization = 'separate' if toy else 'conversation'
        if tokenization not in TOKENIZATIONS:
            raise ValueError(f'model.mllm.tokenization must be one of {TOKENIZATIONS}, got '
                             f'{tokenization!r}')
        self.tokenization = tokenization
        from transformers import AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration
        if toy_pretrain is not None:
            from ..foundation import LLaVARecipe, build_recipe, ensure_toy_llava
            if tiny is None:
                raise ValueError('toy_pretrain pretrains a tiny LLaVA: give it with '
                                 'tiny=dict(...)')
            build_recipe(LLaVARecipe, toy_pretrain)  # a misspelled key fails before any work
        # Rank 0 writes, the others then find it written: transformers' save_pretrained
        # skips the weights on every rank but 0 once torch.distributed is initialised, so a
        # directory written by another rank would hold no weights.
        if tiny is not None:
            main_process_first(ensure_tiny_llava, pretrained, **tiny)
        if toy_pretrain is not None:
            pretrained = main_process_first(ensure_toy_llava, pretrained, tiny_spec(**tiny),
                                            toy_pretrain)
        # before anything loads: without config.json, from_pretrained would build (and
        # allocate) a full-size LLaVA of the default config (LLaMA-7B)
        check_hf_directory(
            pretrained,
            'model.mllm.pretrained'
            if toy_pretrain is None else 'the toy LLaVA of model.mllm.toy_pretrain',
            *HF_NAME,
            weights=load_weights)
        self.tokenizer = AutoTokenizer.from_pretrained(pretrained)
        if tokenization == 'conversation' and not getattr(self.tokenizer, 'is_fast', False):
            raise TypeError(f'{pretrained}: LlavaMLLM needs a fast (tokenizers-backed) tokenizer '
                            'for the character offsets of its prompts; got '
                            f'{type(self.tokenizer).__name__}')
        if load_weights:
            self.model = LlavaForConditionalGeneration.from_pretrained(
                pretrained, dtype=getattr(torch, dtype))
        else:  # the architecture of config.json, randomly initialised (nothing on 'meta')
            from transformers import LlavaConfig
            self.model = LlavaForConditionalGeneration._from_config(
                LlavaConfig.from_pretrained(pretrained), dtype=getattr(torch, dtype))
        processor = CLIPImageProcessor.from_pretrained(pretrained)
        self.image_mean, self.image_std = list(processor.image_mean), list(processor.image_std)
        self.max_length = max_length
        self.compute_dtype = getattr(torch, dtype)
        self._add_tokens()
        self._freeze_and_adapt(lora, train_token_embeddings)
        if gradient_checkpointing:
            enable = getattr(self.language_model, 'activation_checkpointing_enable', None)
            (enable or self.language_model.gradient_checkpointing_enable)()
            if not train_token_embeddings:
                # checkpointed blocks need an input that requires grad to backpropagate LoRA
                self.model.enable_input_require_grads()
        # the shared prefix, tokenized once (every conversation's own tokenization must begin
        # with these ids), and with the image placeholder expanded
        self.system_prompt = system_prompt
        self._chat_prefix_ids = self.tokenizer(chat_prefix(system_prompt)).input_ids
        if self.image_token_id not in self._chat_prefix_ids:
            raise ValueError(
                f'{pretrained}: config.json\'s image_token_index is {self.image_token_id}, but the '
                f'tokenizer gives {IMAGE_PLACEHOLDER} the id '
                f'{self.tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)}: the tokenizer and '
                'config.json are not of the same LLaVA')
        self._prefix_ids = expand_image_token(self._chat_prefix_ids, self.image_token_id,
                                              self.num_image_tokens)

    @staticmethod
    def check_paths(cfg: dict, key: str = 'model.mllm') -> None:
        """Check the ``pretrained`` directory of a config before anything is built (the
        segmentor's first step); nothing to check when ``tiny`` writes it (``toy_pretrain``
        without ``tiny`` is refused by the build, with its own message).

        Args:
            cfg (dict): A ``LlavaMLLM`` config.
            key (str): Its config key.
        """
        if cfg.get('tiny') is None and cfg.get('toy_pretrain') is None and cfg.get(
                'pretrained') is not None:
            check_hf_directory(
                cfg['pretrained'],
                f'{key}.pretrained',
                *HF_NAME,
                weights=cfg.get('load_weights', True))

    # ------------------------------------------------------------------ set-up
    def _add_tokens(self) -> None:
        self.tokenizer.add_tokens([SEG_TOKEN, ANCHOR_MASK_TOKEN, ANCHOR_BOX_TOKEN],
                                  special_tokens=True)
        ids = []
        for token in (SEG_TOKEN, ANCHOR_MASK_TOKEN, ANCHOR_BOX_TOKEN):
            encoded = self.tokenizer(token, add_special_tokens=False).input_ids
            assert len(encoded) == 1, f'{token} must encode to one id, got {encoded}'
            ids.append(encoded[0])
        self.seg_token_id, self.anchor_mask_token_id, self.anchor_box_token_id = ids
        self._base_vocab = self.model.get_input_embeddings().num_embeddings
        if len(self.tokenizer) > self._base_vocab:
            # mean-initialised rows (transformers' default) need values: not on 'meta'
            self.model.resize_token_embeddings(
                len(self.tokenizer), mean_resizing=self.model.device.type != 'meta')
        self.image_token_id = self.model.config.image_token_id
        if self.tokenizer.pad_token_id is None:  # LLaMA tokenizers may lack one
            self.tokenizer.pad_token = self.tokenizer.unk_token

    def _freeze_and_adapt(self, lora: Optional[dict], train_token_embeddings: Union[bool,
                                                                                    str]) -> None:
        self.model.requires_grad_(False)
        if lora is not None:
            from peft import LoraConfig, inject_adapter_in_model
            targets = '|'.join(lora.get('target_modules', ('q_proj', 'v_proj')))
            config = LoraConfig(
                r=lora.get('r', 8),
                lora_alpha=lora.get('alpha', 16),
                lora_dropout=lora.get('dropout', 0.05),
                bias='none',
                # only the language model: CLIP also has q_proj/v_proj
                target_modules=rf'.*language_model.*\.({targets})')
            inject_adapter_in_model(config, self.model)
        if train_token_embeddings == 'added':
            self._train_added_rows()
        elif train_token_embeddings:
            self.model.get_input_embeddings().requires_grad_(True)
            self.model.get_output_embeddings().requires_grad_(True)
        for param in self.model.parameters():
            if param.requires_grad:
                param.data = param.data.float()

    def _train_added_rows(self) -> None:
        """Trainable deltas for the added tokens' rows of ``embed_tokens`` and ``lm_head``."""
        from peft import TrainableTokensConfig, inject_adapter_in_model
        ids = [self.seg_token_id, self.anchor_mask_token_id, self.anchor_box_token_id]
        new = [i for i in ids if i >= self._base_vocab]
        if new and self.model.device.type != 'meta':
            # rows the resize just drew at random: the mean instead, the same for every seed,
            # as they are frozen base weights now (the deltas, trained, start from them)
            with torch.no_grad():
                for layer in (self.model.get_input_embeddings(),
                              self.model.get_output_embeddings()):
                    weight = layer.weight
                    weight[new] = weight[:self._base_vocab].mean(0, keepdim=True).to(weight)
        with warnings.catch_warnings():  # peft warns of a second adapter (LoRA is the first)
            warnings.filterwarnings('ignore', message='Already found a `peft_config`')
            inject_adapter_in_model(
                TrainableTokensConfig(
                    target_modules=['embed_tokens', 'lm_head'], token_indices=ids),
                self.model,
                adapter_name='added_tokens')

    @property
    def language_model(self) -> nn.Module:
        return self.model.model.language_model

    @property
    def hidden_size(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def vision_hidden_size(self) -> int:
        return self.model.config.vision_config.hidden_size

    @property
    def image_size(self) -> int:
        return self.model.config.vision_config.image_size

    @property
    def num_image_tokens(self) -> int:
        return (self.image_size // self.model.config.vision_config.patch_size)**2

    def train(self, mode: bool = True) -> 'LlavaMLLM':
        super().train(mode)
        self.model.model.vision_tower.eval()  # frozen: no dropout, fixed statistics
        return self

    # ------------------------------------------------------------------ encoders
    @torch.no_grad()
    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) CLIP-normalised images -> (B, T, D) projected image tokens."""
        self._check_image_size(pixels)
        features = self.model.model.get_image_features(pixel_values=pixels.to(self.compute_dtype))
        return torch.stack(list(features.pooler_output))

    @torch.no_grad()
    def clip_cls(self, pixels: torch.Tensor) -> torch.Tensor:
        """(M, 3, S, S) CLIP-normalised crops -> (M, C) CLS features (post-layernorm)."""
        self._check_image_size(pixels)
        return self.model.model.vision_tower(
            pixel_values=pixels.to(self.compute_dtype)).pooler_output

    def _check_image_size(self, pixels: torch.Tensor) -> None:
        if pixels.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'CLIP inputs must be {self.image_size}x{self.image_size} for this '
                             f'LLaVA, got {tuple(pixels.shape[-2:])}: set the pipeline\'s '
                             'clip_size to the vision tower\'s image size')

    # ------------------------------------------------------------------ tokens
    def prefix_ids(self, device: torch.device) -> torch.Tensor:
        """(Lp,) ids of the shared prefix with the image placeholder expanded."""
        return torch.tensor(self._prefix_ids, dtype=torch.long, device=device)

    def tokenize(self,
                 texts: Sequence[str],
                 answers: Optional[Sequence[str]],
                 device: torch.device,
                 names: Optional[Sequence[str]] = None) -> QueryTokens:
        """Tokenize query suffixes ``<text> ASSISTANT: <answer></s>``.

        With ``tokenization='conversation'`` each conversation is tokenized as one string,
        prefix included (:func:`encode_conversation`), and its prefix tokens are checked to be
        the shared prefix's: the suffix ids are what the tokenizer gives that part of the whole
        prompt. With ``'separate'``, :func:`encode_turn`.

        Args:
            texts (Sequence[str]): Instructions; ``<anchor>`` becomes the two anchor placeholder
                tokens.
            answers (Sequence[str] | None): Answers to teacher-force (with labels), or None to
                generate.
            device (torch.device): Device of the returned tensors.
            names (Sequence[str], optional): Per query, a name for error messages (e.g. image path
                and index).

        Raises:
            ValueError: A prompt longer than ``max_length``, or one whose tokenization does not
                split into the shared prefix and a suffix, naming the query.
        """
        prefix_len = len(self._prefix_ids)
        rows, label_rows = [], []
        for i, text in enumerate(texts):
            name = names[i] if names else f'query {i}'
            text = text.replace(ANCHOR_PLACEHOLDER, ANCHOR_MASK_TOKEN + ANCHOR_BOX_TOKEN)
            answer = None if answers is None else answers[i]
            if self.tokenization == 'separate':
                prefix = self._chat_prefix_ids
                ids, labels = encode_turn(self.tokenizer, text, answer)
            else:
                prefix, ids, labels = encode_conversation(self.tokenizer, self.system_prompt, text,
                                                          answer, name)
            if prefix != self._chat_prefix_ids:
                found, shared = (
                    self.tokenizer.convert_ids_to_tokens(p)[-6:]
                    for p in (prefix, self._chat_prefix_ids))
                raise ValueError(f'{name}: tokenized with its query, the prompt\'s prefix ends '
                                 f'in {found}, not in the shared prefix\'s {shared} '
                                 f'({text[:60]!r}...)')
            if prefix_len + len(ids) > self.max_length:
                raise ValueError(f'{name}: the prompt has {prefix_len + len(ids)} tokens, over '
                                 f'the model\'s max_length {self.max_length} ({text[:60]!r}...)')
            rows.append(ids)
            label_rows.append(labels)
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, label) in enumerate(zip(rows, label_rows)):
            ids[i, :len(row)] = torch.tensor(row)
            labels[i, :len(row)] = torch.tensor(label)
            mask[i, :len(row)] = 1
        return QueryTokens(
            ids.to(device),
            labels.to(device) if answers is not None else None, mask.to(device))

    def suffix_embeds(self, tokens: QueryTokens,
                      anchor_embeds: Optional[torch.Tensor]) -> torch.Tensor:
        """Embed suffix ids and add the anchor encodings (Q, 2, D) at their placeholders."""
        embeds = self.model.get_input_embeddings()(tokens.ids)
        if anchor_embeds is not None:
            for slot, token_id in enumerate((self.anchor_mask_token_id, self.anchor_box_token_id)):
                at = (tokens.ids == token_id).to(embeds.dtype).unsqueeze(-1)
                embeds = embeds + at * anchor_embeds[:, slot:slot + 1].to(embeds.dtype)
        return embeds.to(self.compute_dtype)

    def prefix_embeds(self, image_features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) image features -> (B, Lp, D) prefix embeddings."""
        ids = self.prefix_ids(image_features.device)
        embeds = self.model.get_input_embeddings()(ids).to(self.compute_dtype)
        embeds = embeds.unsqueeze(0).repeat(image_features.shape[0], 1, 1)
        at = (ids == self.image_token_id).nonzero().squeeze(1)
        embeds[:, at] = image_features.to(embeds.dtype)
        return embeds

    # ------------------------------------------------------------------ forward
    def forward_full(
            self,
            image_features: torch.Tensor,
            image_index: torch.Tensor,
            tokens: QueryTokens,
            anchor_embeds: Optional[torch.Tensor] = None,
            packed: Optional[bool] = None
    ) -> Tuple[Optional[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Run every query with gradients (training): packed or as separate sequences.

        Packed (``packed_prefix``, the default), the queries of an image are one sequence
        with the prefix once (:mod:`.packing`); separate, each query is its own full
        sequence. Both give the same losses and gradients; packing does the prefix's work once
        per image instead of once per query.

        Args:
            image_features (Tensor): (B, T, D) from :meth:`image_features`, once per image.
            image_index (Tensor): (Q,) image of each query.
            tokens (QueryTokens): Suffixes with answers (teacher forcing).
            anchor_embeds (Tensor, optional): (Q, 2, D) anchor mask/box encodings, or None.
            packed (bool, optional): Override ``packed_prefix`` for this call.

        Returns:
            Answer-token cross-entropy (None without labels), ``[SEG]`` states (Q, D) and
            whether each query has a ``[SEG]`` (Q,).
        """
        packed = self.packed_prefix if packed is None else packed
        forward = self._forward_packed if packed else self._forward_separate
        hidden = forward(image_features, image_index, tokens, anchor_embeds)
        return (self.answer_loss(hidden, tokens.labels), *self.seg_states(hidden, tokens.ids))

    def _forward_separate(self, image_features: torch.Tensor, image_index: torch.Tensor,
                          tokens: QueryTokens,
                          anchor_embeds: Optional[torch.Tensor]) -> torch.Tensor:
        """Each query as ``[prefix | suffix]``, the prefix repeated -> (Q, S, D) suffix states."""
        prefix = self.prefix_embeds(image_features)[image_index]
        embeds = torch.cat([prefix, self.suffix_embeds(tokens, anchor_embeds)], dim=1)
        mask = torch.cat([tokens.mask.new_ones(prefix.shape[:2]), tokens.mask], dim=1)
        return self.language_model(
            inputs_embeds=embeds, attention_mask=mask,
            use_cache=False).last_hidden_state[:, prefix.shape[1]:]

    def _forward_packed(self, image_features: torch.Tensor, image_index: torch.Tensor,
                        tokens: QueryTokens, anchor_embeds: Optional[torch.Tensor]) -> torch.Tensor:
        """One ``[prefix | suffix 1 | suffix 2 | ...]`` row per image -> (Q, S, D)."""
        layout = pack_queries(len(self._prefix_ids), tokens.mask, image_index)
        prefix = self.prefix_embeds(image_features[layout.images])
        embeds = gather_packed(prefix, self.suffix_embeds(tokens, anchor_embeds), layout)
        hidden = self.language_model(
            inputs_embeds=embeds,
            attention_mask=attention_bias(layout.segment, embeds.dtype),
            position_ids=layout.positions,
            use_cache=False).last_hidden_state
        return unpack_suffixes(hidden, layout)

    def answer_loss(self, hidden: torch.Tensor,
                    labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """Mean cross-entropy over answer tokens; logits only where a label is."""
        if labels is None:
            return None
        targets = labels[:, 1:]
        selected = targets != IGNORE
        logits = self.lm_logits(hidden[:, :-1][selected])
        return F.cross_entropy(logits.float(), targets[selected])

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden states (in the LM head's own dtype)."""
        head = self.model.get_output_embeddings()
        return head(hidden.to(head.weight.dtype))

    def seg_states(self, hidden: torch.Tensor,
                   ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Hidden state that predicts each query's first ``[SEG]`` -> (Q, D), found (Q,)."""
        is_seg = ids == self.seg_token_id
        found = is_seg.any(dim=1)
        first = is_seg.float().argmax(dim=1)
        if bool((first[found] < 1).any()):
            raise ValueError(f'[SEG] is the first token of query '
                             f'{int((found & (first < 1)).nonzero()[0])}; an instruction must '
                             'precede the answer')
        rows = torch.arange(len(ids), device=ids.device)
        states = hidden[rows, (first - 1).clamp(min=0)]
        return states * found.unsqueeze(1).to(states.dtype), found
