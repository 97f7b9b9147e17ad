"""Seg-Zero's rewards as registered components (``mmcora.registry.REWARDS``).

Each term is a pure function of a reply and its :class:`~.targets.SegZeroTarget` (canvas
pixels), with its threshold in the config; :class:`SegZeroReward` sums weighted terms (Seg-Zero:
five terms of weight 1, so at most 5.0). The rules are those of Seg-Zero's
``verl/utils/reward_score/seg_restrict.py`` (strict format, hard accuracy: the paper's best
ReasonSeg setting) and ``seg.py`` (soft format), read through :func:`~.reply.seg_zero_answer`
so that a reply Seg-Zero scores 0 scores 0 here:

====================  ==================================================================
term                  1.0 when
====================  ==================================================================
ThinkFormatReward     the reply is exactly ``<think>...</think>`` + ``<answer>...</answer>``
AnswerFormatReward    strict: keys ``bbox`` (4 values), ``points_1``, ``points_2`` (2 each);
                      soft: a key containing "bbox" with 4 values and two containing "point"
BoxIoUReward          IoU(box, target box) > 0.5 (inclusive pixels: width = x2 - x1 + 1)
BoxL1Reward           mean |coordinate difference| < 10 px
PointDistanceReward   both points inside the *predicted* box and the mean distance to the
                      target points, in the better of the two pairings, < 100 px
====================  ==================================================================

``soft=True`` on an accuracy term gives Seg-Zero's soft variant instead (the IoU itself,
``1 - distance / canvas``); any malformed reply scores 0, never raises.
"""
import math
import re
from typing import Dict, List, Optional, Sequence

from ...instructions.point_targets import SegZeroTarget, box_iou
from ...registry import REWARDS
from .reply import seg_zero_answer, seg_zero_box_points

THINK_ANSWER = re.compile(r'<think>.*?</think>\s*<answer>.*?</answer>', re.DOTALL)


class RewardTerm:
    """A reward term: ``term(reply, target) -> float``.

    Args:
        canvas (int): Side of the canvas the coordinates refer to (the soft scale).
    """

    def __init__(self, canvas: int = 840) -> None:
        self.canvas = canvas

    def __call__(self, reply: str, target: SegZeroTarget) -> float:
        raise NotImplementedError


@REWARDS.register_module()
class ThinkFormatReward(RewardTerm):
    """1 when the whole reply is ``<think>...</think>`` then ``<answer>...</answer>``."""

    def __call__(self, reply: str, target: SegZeroTarget) -> float:
        return float(THINK_ANSWER.fullmatch(reply) is not None)


@REWARDS.register_module()
class AnswerFormatReward(RewardTerm):
    """1 when the answer object has the box and the two points.

    Args:
        strict (bool): Exact keys ``bbox``, ``points_1``, ``points_2`` (Seg-Zero's strict
            format reward, its best on ReasonSeg); else any key containing "bbox" with 4
            values and two keys containing "point" with 2 values each.
        canvas (int): As :class:`RewardTerm`.
    """

    def __init__(self, strict: bool = True, canvas: int = 840) -> None:
        super().__init__(canvas)
        self.strict = strict

    def __call__(self, reply: str, target: SegZeroTarget) -> float:
        data = seg_zero_answer(reply)
        if data is None:
            return 0.0

        def sized(value, n) -> bool:
            return isinstance(value, list) and len(value) == n

        if self.strict:
            return float(
                sized(data.get('bbox'), 4) and sized(data.get('points_1'), 2)
                and sized(data.get('points_2'), 2))
        boxes = [k for k, v in data.items() if 'bbox' in k and sized(v, 4)]
        points = [k for k, v in data.items() if 'point' in k and sized(v, 2)]
        return float(bool(boxes) and len(points) >= 2)


class _AccuracyTerm(RewardTerm):
    """An accuracy term with a threshold and Seg-Zero's soft variant.

    Args:
        threshold (float): The hard rule's bound (strict inequality).
        soft (bool): Return the soft score instead of 0/1.
        canvas (int): As :class:`RewardTerm`.
    """

    def __init__(self, threshold: float, soft: bool = False, canvas: int = 840) -> None:
        super().__init__(canvas)
        self.threshold = threshold
        self.soft = soft

    def __call__(self, reply: str, target: SegZeroTarget) -> float:
        read = seg_zero_box_points(reply)
        if read is None:
            return 0.0
        try:
            return float(self.score(*read, target))
        except (TypeError, ValueError, ZeroDivisionError):
            return 0.0

    def score(self, box: List[float], points, target: SegZeroTarget) -> float:
        raise NotImplementedError


@REWARDS.register_module()
class BoxIoUReward(_AccuracyTerm):
    """1 when IoU(box, target box) > ``threshold`` (0.5); soft: the IoU."""

    def __init__(self, threshold: float = 0.5, soft: bool = False, canvas: int = 840) -> None:
        super().__init__(threshold, soft, canvas)

    def score(self, box, points, target):
        iou = box_iou(box, target.box)
        return iou if self.soft else iou > self.threshold


@REWARDS.register_module()
class BoxL1Reward(_AccuracyTerm):
    """1 when the mean |coordinate difference| < ``threshold`` px (10); soft:
    ``1 - L1 / canvas``."""

    def __init__(self, threshold: float = 10., soft: bool = False, canvas: int = 840) -> None:
        super().__init__(threshold, soft, canvas)

    def score(self, box, points, target):
        l1 = sum(abs(p - t) for p, t in zip(box, target.box)) / 4
        return max(1 - l1 / self.canvas, 0.) if self.soft else l1 < self.threshold


@REWARDS.register_module()
class PointDistanceReward(_AccuracyTerm):
    """1 when both points lie in the predicted box and their mean distance to the target
    points (better pairing) < ``threshold`` px (100); soft: ``1 - distance / canvas``."""

    def __init__(self, threshold: float = 100., soft: bool = False, canvas: int = 840) -> None:
        super().__init__(threshold, soft, canvas)

    def score(self, box, points, target):
        x1, y1, x2, y2 = box
        if not all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in points):
            return 0.
        (a, b), (g, h) = points, target.points
        distance = min(math.dist(a, g) + math.dist(b, h), math.dist(a, h) + math.dist(b, g)) / 2
        return max(1 - distance / self.canvas, 0.) if self.soft else distance < self.threshold


SEG_ZERO_TERMS = (
    dict(type='ThinkFormatReward'),
    dict(type='AnswerFormatReward', strict=True),
    dict(type='BoxIoUReward', threshold=0.5),
    dict(type='BoxL1Reward', threshold=10.),
    dict(type='PointDistanceReward', threshold=100.),
)


@REWARDS.register_module()
class SegZeroReward:
    """The weighted sum of reward terms (Seg-Zero: the five terms, weight 1 each).

    Args:
        terms (Sequence[dict]): Term configs; a ``weight`` key (default 1.0) scales each.
        canvas (int): Given to every term that does not set its own.
    """

    def __init__(self, terms: Sequence[dict] = SEG_ZERO_TERMS, canvas: int = 840) -> None:
        self.terms: Dict[str, RewardTerm] = {}
        self.weights: Dict[str, float] = {}
        for cfg in terms:
            cfg = dict(cfg)
            weight = float(cfg.pop('weight', 1.0))
            cfg.setdefault('canvas', canvas)
            term = REWARDS.build(cfg)
            name = type(term).__name__
            if name in self.terms:
                raise ValueError(f'reward term {name} is listed twice')
            self.terms[name], self.weights[name] = term, weight

    @property
    def maximum(self) -> float:
        """The highest total (5.0 for Seg-Zero's terms)."""
        return sum(self.weights.values())

    def score_terms(self, reply: str, target: SegZeroTarget) -> Dict[str, float]:
        """Each term's unweighted value.

        Args:
            reply (str): The reasoner's reply.
            target (SegZeroTarget): The target in canvas pixels.

        Returns:
            dict[str, float]: Term name -> value.
        """
        return {name: term(reply, target) for name, term in self.terms.items()}

    def __call__(self,
                 reply: str,
                 target: SegZeroTarget,
                 terms: Optional[Dict[str, float]] = None) -> float:
        """The weighted total of ``reply``.

        Args:
            reply (str): The reasoner's reply.
            target (SegZeroTarget): The target in canvas pixels.
            terms (dict[str, float], optional): Already computed :meth:`score_terms`.

        Returns:
            float: The total reward.
        """
        terms = self.score_terms(reply, target) if terms is None else terms
        return sum(self.weights[name] * value for name, value in terms.items())


def trl_reward_function(reward: SegZeroReward):
    """A TRL ``GRPOTrainer`` reward function around ``reward``.

    TRL calls ``fn(prompts=..., completions=..., **dataset_columns)``; the dataset gives the
    targets as columns ``bbox`` (x1, y1, x2, y2) and ``points`` ((x, y), (x, y)) in canvas
    pixels. Conversational completions (lists of messages) are read from their first message.

    Args:
        reward (SegZeroReward): The reward to apply.

    Returns:
        Callable: ``fn(completions, bbox, points, **kwargs) -> list[float]``.
    """

    def seg_zero_reward(completions, bbox, points, **kwargs) -> List[float]:
        scores = []
        for completion, box, pts in zip(completions, bbox, points):
            text = completion[0]['content'] if isinstance(completion, list) else completion
            target = SegZeroTarget(tuple(box), tuple(tuple(p) for p in pts))
            scores.append(reward(text, target))
        return scores

    seg_zero_reward.__name__ = 'seg_zero_reward'
    return seg_zero_reward
