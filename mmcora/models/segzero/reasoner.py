"""Seg-Zero's reasoner: Qwen2.5-VL writes ``<think>...</think><answer>{json}</answer>``.

Every prompt is one image and one instruction. The image is encoded and the prompt prefilled
once (batch 1); a group of G replies then continues from copies of that key/value cache, for
sampling as for the training forward, so neither the vision tower nor the ~1000-token prompt
runs G times. The reference policy of the KL term is the adapter-disabled model under LoRA,
or a frozen copy of the starting policy under full fine-tuning (``reference`` below).

Qwen2.5-VL's 3-D rotary positions are computed only when ``mm_token_type_ids`` is passed
(transformers 5): every prompt forward passes it, and the continuation uses the position
offset the prefill stored.
"""
import contextlib
import copy
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

from ...utils import main_process_first
from ..pretrained import check_hf_directory
from .prompt import seg_zero_prompt

HF_NAME = ('Qwen2.5-VL', 'Qwen2.5-VL-3B-Instruct')  # what and an example, for messages


@dataclass
class Rollout:
    """G sampled replies to one prompt.

    Attributes:
        ids: (G, L) completion token ids, padded with the pad id after the end token.
        mask: (G, L) 1 for the reply's tokens (its end token included), 0 for padding.
        logprobs: (G, L) log-probabilities of the sampled tokens under the sampling policy.
        texts: G decoded replies (special tokens removed).
    """
    ids: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    texts: List[str]


@MODELS.register_module()
class QwenReasoner(nn.Module):
    """Qwen2.5-VL through transformers, with Seg-Zero's prompt.

    Args:
        pretrained (str): A Hugging Face directory (``Qwen/Qwen2.5-VL-3B-Instruct``); with
            ``tiny``, where the tiny model is written.
        tiny (dict, optional): Write (once) and load a tiny Qwen2.5-VL of these
            :data:`~mmcora.models.segzero.tiny_qwen.DEFAULT_SPEC` overrides.
        dtype (str): Weights' dtype; trainable weights are kept in float32.
        lora (dict, optional): LoRA on the language model (``r``, ``alpha``, ``dropout``,
            ``target_modules``); None trains the whole model (Seg-Zero's setting).
        freeze_vision (bool): Keep the vision tower frozen.
        reference (bool): Keep a frozen copy of the starting policy for the KL term when
            training without LoRA (with LoRA the reference is the adapter-disabled model);
            False for inference-only configs saves its memory.
        gradient_checkpointing (bool): Recompute activations in backward; the training
            forward then runs full sequences (the key/value cache is off under checkpointing).
        json_example (bool): The prompt's example answer as valid JSON (see ``prompt.py``).
        max_new_tokens (int): Reply budget (Seg-Zero: 1300 in training, 1024 at inference).
        temperature (float): Sampling temperature of rollouts (Seg-Zero: 1.0).
    """

    def __init__(self,
                 pretrained: str,
                 tiny: Optional[dict] = None,
                 dtype: str = 'bfloat16',
                 lora: Optional[dict] = None,
                 freeze_vision: bool = False,
                 reference: bool = True,
                 gradient_checkpointing: bool = False,
                 json_example: bool = False,
                 max_new_tokens: int = 1300,
                 temperature: float = 1.0) -> None:
        super().__init__()
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
        if tiny is not None:
            from .tiny_qwen import ensure_tiny_qwen
            main_process_first(ensure_tiny_qwen, pretrained, **tiny)
        # before anything loads: without config.json, from_pretrained would build (and
        # allocate) a full-size Qwen2.5-VL of the default config (hidden size 8192)
        check_hf_directory(pretrained, 'model.reasoner.pretrained', *HF_NAME)
        self.processor = AutoProcessor.from_pretrained(pretrained)
        self.tokenizer = self.processor.tokenizer
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            pretrained, dtype=getattr(torch, dtype))
        config = self.model.config
        self.eos_id = self.tokenizer.convert_tokens_to_ids('<|im_end|>')
        self.pad_id = self.tokenizer.pad_token_id
        # Sampling an image/video token would break the next forward ("image features and
        # image tokens do not match"): they are never sampled.
        self.suppressed = [
            config.image_token_id, config.video_token_id, config.vision_start_token_id,
            config.vision_end_token_id
        ]
        self.json_example = json_example
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.gradient_checkpointing = gradient_checkpointing
        self.lora = lora
        self._adapt(lora, freeze_vision)
        # A frozen submodule with a flag: checkpoints carry both, so a resumed run keeps its
        # reference, and GRPO's first step copies the policy it starts from (the pretrained
        # or the warm-started one, after load_from) into it (sync_reference).
        self.reference_model = None
        if reference and lora is None:
            self.reference_model = copy.deepcopy(self.model).requires_grad_(False).eval()
            self.register_buffer('reference_synced', torch.tensor(False))
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
            self.model.enable_input_require_grads()

    @staticmethod
    def check_paths(cfg: dict, key: str = 'model.reasoner') -> None:
        """Check the ``pretrained`` directory of a config before anything is built (the
        segmentor's first step); nothing to check when ``tiny`` writes it.

        Args:
            cfg (dict): A ``QwenReasoner`` config.
            key (str): Its config key.
        """
        if cfg.get('tiny') is None and cfg.get('pretrained') is not None:
            check_hf_directory(cfg['pretrained'], f'{key}.pretrained', *HF_NAME)

    def _adapt(self, lora: Optional[dict], freeze_vision: bool) -> None:
        if lora is not None:
            from peft import LoraConfig, inject_adapter_in_model
            self.model.requires_grad_(False)
            targets = '|'.join(lora.get('target_modules', ('q_proj', 'k_proj', 'v_proj', 'o_proj')))
            inject_adapter_in_model(
                LoraConfig(
                    r=lora.get('r', 8),
                    lora_alpha=lora.get('alpha', 16),
                    lora_dropout=lora.get('dropout', 0.0),
                    bias='none',
                    target_modules=rf'.*language_model.*\.({targets})'), self.model)
        if freeze_vision:
            self.model.model.visual.requires_grad_(False)
        for param in self.model.parameters():
            if param.requires_grad:
                param.data = param.data.float()

    # ------------------------------------------------------------------ prompts
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def chat_text(self, instruction: str) -> str:
        """The chat-formatted prompt (system, user turn with the image, assistant header)."""
        messages = [
            dict(
                role='user',
                content=[
                    dict(type='image'),
                    dict(type='text', text=seg_zero_prompt(instruction, self.json_example))
                ])
        ]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False)

    def build_prompt(self, canvas: np.ndarray, instruction: str) -> dict:
        """Processor inputs (batch 1) of one canvas image (S, S, 3 RGB uint8) and instruction:
        ``input_ids``, ``attention_mask``, ``mm_token_type_ids``, ``pixel_values``,
        ``image_grid_thw``, on the model's device."""
        batch = self.processor(
            text=[self.chat_text(instruction)], images=[canvas], return_tensors='pt')
        dtype = self.model.model.visual.patch_embed.proj.weight.dtype
        out = {k: v.to(self.device) for k, v in batch.items()}
        out['pixel_values'] = out['pixel_values'].to(dtype)
        return out

    def encode_reply(self, text: str) -> torch.Tensor:
        """(L,) ids of an assistant reply as the chat template ends it (``<|im_end|>``)."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids + [self.eos_id]
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ forward passes
    @contextlib.contextmanager
    def reference(self) -> Iterator[nn.Module]:
        """The reference policy: adapters off (LoRA) or the frozen copy."""
        if self.lora is None:
            if self.reference_model is None:
                raise RuntimeError('this reasoner keeps no reference policy (reference=False)')
            yield self.reference_model
            return
        from peft.tuners.tuners_utils import BaseTunerLayer
        layers = [m for m in self.model.modules() if isinstance(m, BaseTunerLayer)]
        for layer in layers:
            layer.enable_adapters(False)
        try:
            yield self.model
        finally:
            for layer in layers:
                layer.enable_adapters(True)

    def sync_reference(self, force: bool = False) -> None:
        """Make the frozen reference a copy of the policy, once (or again with ``force``)."""
        if self.reference_model is None or (bool(self.reference_synced) and not force):
            return
        self.reference_model.load_state_dict(self.model.state_dict())
        self.reference_synced.fill_(True)

    @staticmethod
    def prefill(model: nn.Module, prompt: dict):
        """Run the prompt once: (last position's logits (1, V), key/value cache)."""
        out = model(**prompt, use_cache=True)
        return out.logits[:, -1], out.past_key_values

    def completion_logprobs(self,
                            prompt: dict,
                            ids: torch.Tensor,
                            model: Optional[nn.Module] = None,
                            share_prefix: Optional[bool] = None) -> torch.Tensor:
        """Log-probabilities of completion tokens after one prompt.

        Args:
            prompt (dict): :meth:`build_prompt` output (batch 1).
            ids (Tensor): (G, L) completions (padding after the end token is harmless).
            model (nn.Module, optional): Another policy (the reference); default the policy.
            share_prefix (bool, optional): Prefill once and continue G copies of the cache
                (default unless gradient checkpointing is on), or run G full sequences.

        Returns:
            Tensor: (G, L) float32 log p(ids[:, t] | prompt, ids[:, :t]) at the sampling
            temperature.
        """
        model = self.model if model is None else model
        share = (not self.gradient_checkpointing) if share_prefix is None else share_prefix
        g = ids.shape[0]
        if share:
            first, cache = self.prefill(model, prompt)
            cache.batch_repeat_interleave(g)
            rest = model(input_ids=ids[:, :-1], past_key_values=cache, use_cache=True).logits
            logits = torch.cat([first.unsqueeze(1).expand(g, 1, -1), rest], 1)
        else:
            n = prompt['input_ids'].shape[1]
            full = torch.cat([prompt['input_ids'].expand(g, -1), ids], 1)
            types = torch.cat([prompt['mm_token_type_ids'].expand(g, -1), torch.zeros_like(ids)], 1)
            logits = model(
                input_ids=full,
                attention_mask=torch.ones_like(full),
                mm_token_type_ids=types,
                pixel_values=prompt['pixel_values'].repeat(g, 1),
                image_grid_thw=prompt['image_grid_thw'].repeat(g, 1),
                use_cache=False).logits[:, n - 1:-1]
        logp = F.log_softmax(logits.float() / self.temperature, -1)
        return logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def sample(self,
               prompt: dict,
               num_samples: int,
               max_new_tokens: Optional[int] = None,
               greedy: bool = False,
               generator: Optional[torch.Generator] = None) -> Rollout:
        """G replies to one prompt from one prefill, with the key/value cache.

        Args:
            prompt (dict): :meth:`build_prompt` output (batch 1).
            num_samples (int): G.
            max_new_tokens (int, optional): Default the reasoner's budget.
            greedy (bool): Argmax decoding (inference) instead of sampling at the temperature.
            generator (torch.Generator, optional): Random stream of the sampling.

        Returns:
            Rollout: The replies, their mask and their sampling log-probabilities.
        """
        budget = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        logits, cache = self.prefill(self.model, prompt)
        cache.batch_repeat_interleave(num_samples)
        logits = logits.expand(num_samples, -1)
        done = torch.zeros(num_samples, dtype=torch.bool, device=logits.device)
        tokens, logprobs = [], []
        for _ in range(budget):
            logp = F.log_softmax(logits.float() / self.temperature, -1)
            logp[:, self.suppressed] = -float('inf')
            if greedy:
                token = logp.argmax(-1)
            else:
                token = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            token = torch.where(done, torch.full_like(token, self.pad_id), token)
            tokens.append(token)
            logprobs.append(logp.gather(-1, token[:, None]).squeeze(1).masked_fill(done, 0.))
            done = done | (token == self.eos_id)
            if bool(done.all()):
                break
            logits = self.model(
                input_ids=token[:, None], past_key_values=cache, use_cache=True).logits[:, -1]
        ids = torch.stack(tokens, 1)
        ended = torch.cumsum((ids == self.eos_id).long(), 1)
        # a token belongs to the reply up to and including the first end token
        mask = ((ended == 0) | ((ended == 1) & (ids == self.eos_id))).long()
        texts = self.tokenizer.batch_decode(
            ids * mask + self.pad_id * (1 - mask), skip_special_tokens=True)
        return Rollout(ids, mask, torch.stack(logprobs, 1) * mask, texts)

    def train(self, mode: bool = True) -> 'QwenReasoner':
        super().train(mode)
        if self.reference_model is not None:
            self.reference_model.eval()
        return self

    def trainable_parameters(self) -> Sequence[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]
