"""Seg-Zero as an mmseg model: a reasoner writes a box and two points, a frozen segmenter
turns them into the mask, and the reasoner is trained by GRPO on rewards alone.

Each query of an image is one prompt: the image on the reasoner's canvas and the instruction
in Seg-Zero's prompt. Training samples G replies per prompt from one prefill, scores them
with the configured rewards against the query's target (the box and inscribed-circle points of
its mask, from ``SegZeroInputs``), normalises the rewards within the group and minimises the
clipped policy loss plus the k3 KL to the reference policy. The segmenter never runs in
training (Seg-Zero's rewards are geometric).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.model import BaseModel
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig

from ...instructions.canvas import CanvasTransform
from ...instructions.point_targets import SegZeroTarget
from ...registry import REWARDS
from ...structures import ReasoningDataSample
from ..pretrained import check_model_paths
from . import data_preprocessor as _preprocessor  # noqa: F401  registers it
from .reply import parse_reply
from .rollout import GRPOLoss, group_advantages

SampleList = List[ReasoningDataSample]
# Seg-Zero's answer with its example's spacing, as JSON (the toy warm start writes it).
ANSWER_FORMAT = ('{{"bbox": [{0},{1},{2},{3}], "points_1": [{4},{5}], '
                 '"points_2": [{6},{7}]}}')


def target_reply(target: dict, think: str) -> str:
    """The reply a warm start teaches: reasoning in ``<think>``, the target's JSON answer."""
    (p1, p2), box = target['points'], target['box']
    answer = ANSWER_FORMAT.format(*box, *p1, *p2)
    return f'<think>{think}</think><answer>{answer}</answer>'


@MODELS.register_module()
class SegZeroSegmentor(BaseModel):
    """Image + instructions -> reasoning, box and points -> one mask per instruction.

    Call graph::

        loss(inputs, data_samples)               # mode='loss'
          prompts ---------------------------> (sample, query, prompt, target) per query
          loss_grpo (train_cfg.mode='grpo')
            reasoner.sample ------------------> G replies per prompt, one prefill each
            score ----------------------------> rewards (G,) and per-term values
            group_advantages -----------------> (r - mean) / (std + 1e-6) within the group,
                                                times the target's reliability (pseudo-labels)
            reasoner.completion_logprobs -----> policy (grad) and reference log p
            GRPOLoss -------------------------> clipped policy loss + kl_coef * k3 KL
          loss_sft (train_cfg.mode='sft')      # the toy's warm start on the answer format
            target_reply -> completion_logprobs -> token-mean negative log-likelihood

        predict(inputs, data_samples)            # mode='predict'
          segmenter.encode (once per image)
          reasoner.sample (greedy) -> parse_reply -> CanvasTransform -> segmenter.segment
          -> pred_masks (N, H, W), pred_texts, pred_boxes, pred_points

    Seg-Zero has no anchor input (``takes_anchor_masks`` False): a conditional instruction
    names its anchor in words.

    Args:
        reasoner (ConfigType): ``QwenReasoner`` config.
        segmenter (ConfigType): ``SAM2Segmenter`` or ``SAMPromptSegmenter`` config.
        reward (ConfigType): ``SegZeroReward`` config (``mmcora.registry.REWARDS``).
        train_cfg (OptConfigType): ``mode`` ('grpo' or 'sft'), ``num_generations`` (G, 8),
            ``kl_coef`` (5e-3), ``clip_eps`` (0.2), ``max_new_tokens`` (None: the
            reasoner's), ``think`` (the warm start's reasoning text, ``{class_name}`` filled).
        test_cfg (OptConfigType): ``max_new_tokens`` of greedy decoding (Seg-Zero: 1024).
        data_preprocessor (OptConfigType): ``SegZeroDataPreProcessor`` config.
    """

    takes_anchor_masks = False

    def __init__(self,
                 reasoner: ConfigType,
                 segmenter: ConfigType,
                 reward: ConfigType = dict(type='SegZeroReward'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = dict(type='SegZeroDataPreProcessor'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # options first: a misspelt key fails before a 7B reasoner is loaded
        self.train_cfg = dict(
            mode='grpo',
            num_generations=8,
            kl_coef=5e-3,
            clip_eps=0.2,
            max_new_tokens=None,
            think='The question asks for the {class_name}; I look for it in the image.')
        unknown = sorted(set(train_cfg or {}) - set(self.train_cfg))
        if unknown:
            raise KeyError(f'unknown model.train_cfg keys {unknown}; expected some of '
                           f'{sorted(self.train_cfg)}')
        self.train_cfg.update(train_cfg or {})
        if self.train_cfg['mode'] not in ('grpo', 'sft'):
            raise ValueError("model.train_cfg.mode must be 'grpo' or 'sft', got "
                             f"{self.train_cfg['mode']!r}")
        self.test_cfg = dict(max_new_tokens=1024)
        unknown = sorted(set(test_cfg or {}) - set(self.test_cfg))
        if unknown:
            raise KeyError(f'unknown model.test_cfg keys {unknown}; expected some of '
                           f'{sorted(self.test_cfg)}')
        self.test_cfg.update(test_cfg or {})
        # then the files of both models: a bad segmenter path fails before the reasoner loads
        check_model_paths(reasoner, 'model.reasoner')
        check_model_paths(segmenter, 'model.segmenter')
        self.reasoner = MODELS.build(reasoner)
        self.segmenter = MODELS.build(segmenter)
        self.reward = REWARDS.build(dict(dict(_scope_='mmcora'), **reward))
        self.grpo_loss = GRPOLoss(self.train_cfg['clip_eps'], self.train_cfg['kl_coef'])

    # ------------------------------------------------------------------ shared steps
    def prompts(self, inputs: Dict[str, list], data_samples: SampleList,
                need_target: bool) -> List[Tuple[int, int, dict, Optional[dict]]]:
        """One reasoner prompt per query: (sample index, query index, prompt, target).

        With ``need_target``, queries without a target (empty masks) are left out.
        """
        out = []
        for b, sample in enumerate(data_samples):
            targets = sample.metainfo.get('segzero_targets') or [None] * sample.num_queries
            for i, query in enumerate(sample.queries):
                if need_target and targets[i] is None:
                    continue
                prompt = self.reasoner.build_prompt(inputs['canvas'][b], query['text'])
                out.append((b, i, prompt, targets[i]))
        return out

    def score(self, replies: Sequence[str], target: dict) -> Tuple[List[float], Dict[str, list]]:
        """Total and per-term rewards of replies to one target (canvas pixels)."""
        goal = SegZeroTarget(tuple(target['box']), tuple(tuple(p) for p in target['points']))
        totals, terms = [], {}
        for reply in replies:
            values = self.reward.score_terms(reply, goal)
            totals.append(self.reward(reply, goal, values))
            for name, value in values.items():
                terms.setdefault(name, []).append(value)
        return totals, terms

    def enter_stage(self, name: str) -> None:
        """``CORAStagedTrainLoop``'s call: a stage named 'sft' or 'grpo' sets the mode."""
        if name in ('sft', 'grpo'):
            self.train_cfg['mode'] = name

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: Dict[str, list], data_samples: SampleList, mode: str = 'tensor'):
        """Dispatch to :meth:`loss` or :meth:`predict` (mmengine API)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('predict', 'tensor'):
            return self.predict(inputs, data_samples)
        raise ValueError(f'mode must be loss, predict or tensor, got {mode!r}')

    def loss(self, inputs: Dict[str, list], data_samples: SampleList) -> dict:
        """GRPO losses (or the warm start's likelihood) of a batch, with logged statistics."""
        items = self.prompts(inputs, data_samples, need_target=True)
        if not items:  # no query with a target: zero losses that reach every parameter
            zero = sum(p.sum() for p in self.reasoner.trainable_parameters()) * 0.
            return dict(loss_policy=zero, loss_kl=zero)
        if self.train_cfg['mode'] == 'sft':
            return self.loss_sft(items, data_samples)
        return self.loss_grpo(items)

    def loss_sft(self, items, data_samples: SampleList) -> dict:
        """Token-mean negative log-likelihood of the target replies (one per prompt)."""
        total, count = 0., 0
        for b, i, prompt, target in items:
            query = data_samples[b].queries[i]
            think = self.train_cfg['think'].format(class_name=query.get('class_name') or 'object')
            ids = self.reasoner.encode_reply(target_reply(target, think))[None]
            logp = self.reasoner.completion_logprobs(prompt, ids)
            total = total - logp.sum()
            count += ids.numel()
        return dict(loss_sft=total / count)

    def loss_grpo(self, items) -> dict:
        """Sample G replies per prompt, score, normalise in the group, clipped loss + KL.

        A target from a teacher's pseudo-label carries ``reliability`` in [0, 1] (its mean
        confidence, :class:`SegZeroInputs`); the group's advantages are multiplied by it, so an
        unreliable pseudo-target moves the policy less. (Weighting the rewards instead would do
        nothing: the group normalisation divides any common factor out.) Labeled targets
        weigh 1.
        """
        cfg = self.train_cfg
        g = cfg['num_generations']
        self.reasoner.sync_reference()  # the policy GRPO starts from, on its first step
        parts, rewards, terms, lengths, flat, weights = [], [], {}, [], [], []
        for _, _, prompt, target in items:
            rollout = self.reasoner.sample(prompt, g, cfg['max_new_tokens'])
            totals, values = self.score(rollout.texts, target)
            for name, value in values.items():
                terms.setdefault(name, []).extend(value)
            reward = torch.tensor(totals, device=rollout.ids.device)
            rewards.append(reward)
            flat.append(bool((reward == reward[0]).all()))
            lengths.append(rollout.mask.sum(1).float())
            logp = self.reasoner.completion_logprobs(prompt, rollout.ids)
            with torch.no_grad(), self.reasoner.reference() as reference:
                ref = self.reasoner.completion_logprobs(prompt, rollout.ids, model=reference)
            weight = float(target.get('reliability', 1.0))
            weights.append(weight)
            parts.append(
                (logp, rollout.logprobs, ref, group_advantages(reward) * weight, rollout.mask))
        losses = self.grpo_loss(parts)
        device = losses['loss_policy'].device
        losses.update(
            reward=torch.cat(rewards).mean(),
            reply_length=torch.cat(lengths).mean(),
            zero_advantage_groups=torch.tensor(float(np.mean(flat)), device=device),
            reliability=torch.tensor(float(np.mean(weights)), device=device))
        for name, value in terms.items():
            losses[f'reward_{name}'] = torch.tensor(float(np.mean(value)), device=device)
        return losses

    def extract_feat(self, inputs: Dict[str, list]) -> Tuple[list, list]:
        """Encode each image once: the segmenter's embeddings and the reasoner's canvases
        (the inferencer keeps both for any number of queries)."""
        return self.segmenter.encode(inputs['image']), list(inputs['canvas'])

    @torch.no_grad()
    def predict(self, inputs: Dict[str, list], data_samples: SampleList) -> SampleList:
        """Fill ``pred_masks`` (N, H, W) bool and the metainfo ``pred_texts`` (replies),
        ``pred_reasoning`` (the ``<think>`` texts), ``pred_boxes`` and ``pred_points``
        (original pixels; None where unreadable).

        A reply without a readable box gives an empty mask (the metric counts the miss).
        """
        return self.predict_with_features(*self.extract_feat(inputs), data_samples)

    @torch.no_grad()
    def predict_with_features(self,
                              encoded: list,
                              canvases: list,
                              data_samples: SampleList,
                              mode: Optional[str] = None) -> SampleList:
        """:meth:`predict` on already encoded images; ``mode`` None or 'generate' (Seg-Zero
        always decodes its reply)."""
        if mode not in (None, 'generate'):
            raise ValueError(f"Seg-Zero decodes its replies: mode must be None or 'generate', "
                             f'got {mode!r}')
        by_sample: Dict[int, list] = {b: [] for b in range(len(data_samples))}
        for b, i, prompt, _ in self.prompts(dict(canvas=canvases), data_samples, False):
            reply = self.reasoner.sample(
                prompt, 1, self.test_cfg['max_new_tokens'], greedy=True).texts[0]
            by_sample[b].append(reply)
        for b, sample in enumerate(data_samples):
            h, w = sample.ori_shape
            frame = CanvasTransform(h, w, sample.metainfo.get('canvas', 840))
            masks, boxes, points, thoughts = [], [], [], []
            for reply in by_sample[b]:
                parsed = parse_reply(reply, frame.canvas)
                thoughts.append(parsed.think)
                if not parsed.ok:
                    masks.append(np.zeros((h, w), bool))
                    boxes.append(None)
                    points.append(None)
                    continue
                box = frame.box_to_original(parsed.box)
                pts = [frame.point_to_original(p) for p in parsed.points]
                masks.append(self.segmenter.segment(encoded, b, box, pts))
                boxes.append(list(box))
                points.append([list(p) for p in pts])
            sample.pred_masks = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(
                (0, h, w), dtype=torch.bool)
            sample.set_metainfo(
                dict(
                    pred_texts=by_sample[b],
                    pred_reasoning=thoughts,
                    pred_boxes=boxes,
                    pred_points=points))
        return data_samples
