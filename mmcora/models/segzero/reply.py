"""Reading a reasoner's reply: ``<think>...</think><answer>{"bbox": ..., ...}</answer>``.

Two readings:

* :func:`seg_zero_answer` is Seg-Zero's own (``verl/utils/reward_score/seg_restrict.py``), kept
  exact for the rewards: the first ``{...}`` without a closing brace inside, searched over the
  **whole** reply (a ``{`` inside ``<think>`` therefore breaks it), ``json.loads`` (so the
  single-quoted example of Seg-Zero's prompt is no answer), keys ``bbox``, ``points_1``,
  ``points_2``.
* :func:`parse_reply` is the tolerant one for inference: the JSON inside ``<answer>`` first,
  code fences stripped, single quotes accepted, any key naming a box or a point, numbers as
  strings or floats; the box is put in order and everything is clamped to the canvas.
"""
import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

Point = Tuple[int, int]
Box = Tuple[int, int, int, int]

THINK = re.compile(r'<think>(.*?)</think>', re.DOTALL)
ANSWER = re.compile(r'<answer>(.*?)</answer>', re.DOTALL)
FIRST_OBJECT = re.compile(r'\{[^}]+\}')


def seg_zero_answer(reply: str) -> Optional[Dict[str, Any]]:
    """Seg-Zero's reading of the answer object (for rewards).

    Args:
        reply (str): The reasoner's whole reply.

    Returns:
        dict | None: The decoded object of the first ``{...}`` of the reply, or None when
        there is none or it is not JSON.
    """
    match = FIRST_OBJECT.search(reply)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def seg_zero_box_points(reply: str) -> Optional[Tuple[List[float], List[Point]]]:
    """The box (floats) and the two points (cast to int) of Seg-Zero's reading, or None.

    Args:
        reply (str): The reasoner's whole reply.

    Returns:
        tuple[list[float], list[Point]] | None: ``bbox`` as given and ``points_1``,
        ``points_2``, or None when a key is missing or malformed.
    """
    data = seg_zero_answer(reply)
    try:
        box = [float(v) for v in data['bbox']]
        # int() refuses NaN and inf (json.loads reads NaN, Infinity and 1e999)
        points = [(int(data[k][0]), int(data[k][1])) for k in ('points_1', 'points_2')]
    except (TypeError, KeyError, ValueError, IndexError, OverflowError):
        return None
    if len(box) != 4 or any(len(data[k]) != 2 for k in ('points_1', 'points_2')):
        return None
    if not all(map(math.isfinite, box)):
        return None
    return box, points


@dataclass
class ParsedReply:
    """A reply read for inference, in canvas pixels.

    Args:
        think (str): The reasoning text (inside ``<think>``; '' when absent).
        box (Box | None): (x1, y1, x2, y2) with x1 <= x2, y1 <= y2, or None.
        points (list[Point]): Up to two (x, y) points, possibly none.
        error (str | None): Why no box could be read, else None.
    """
    think: str = ''
    box: Optional[Box] = None
    points: List[Point] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """Whether a box was read (points are optional for the segmenter)."""
        return self.box is not None


def _balanced_objects(text: str):
    """Every outermost ``{...}`` of ``text`` with balanced braces, in order."""
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == '{':
            start = i if depth == 0 else start
            depth += 1
        elif char == '}' and depth:
            depth -= 1
            if depth == 0:
                yield text[start:i + 1]


def _decode_object(text: str) -> Optional[Dict[str, Any]]:
    """The first object of ``text`` that decodes as JSON or as a Python literal."""
    for chunk in _balanced_objects(re.sub(r'```(?:json)?', '', text)):
        for decode in (json.loads, ast.literal_eval):
            try:
                data = decode(chunk)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(data, dict):
                return data
    return None


def _numbers(value: Any, count: int) -> Optional[List[float]]:
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]  # [[x1, y1, x2, y2]]
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if all(map(math.isfinite, numbers)) else None  # json reads NaN, Infinity


def parse_reply(reply: str, canvas: int = 840) -> ParsedReply:
    """Read a reply tolerantly (for inference; the rewards use :func:`seg_zero_answer`).

    Args:
        reply (str): The reasoner's whole reply.
        canvas (int): Side of the canvas the coordinates refer to (clamped to it).

    Returns:
        ParsedReply: Think text, ordered and clamped box and points; ``error`` says what
        was missing when no box could be read.
    """
    think = THINK.search(reply)
    answer = ANSWER.search(reply)
    parsed = ParsedReply(think=think.group(1).strip() if think else '')
    data = _decode_object(answer.group(1)) if answer else None
    if data is None:  # no <answer> or nothing readable in it: after the reasoning, then all
        data = (_decode_object(reply[think.end():]) if think else None) or _decode_object(reply)
    if data is None:
        parsed.error = 'no answer object ({...}) in the reply'
        return parsed

    def clamp(v: float) -> int:
        return int(min(max(round(v), 0), canvas - 1))

    box_keys = sorted(k for k in data if isinstance(k, str) and 'box' in k.lower())
    box = _numbers(data[box_keys[0]], 4) if box_keys else None
    if box is None:
        parsed.error = f'no box of 4 numbers in the answer (keys {sorted(map(str, data))})'
        return parsed
    x1, y1, x2, y2 = (clamp(v) for v in box)
    parsed.box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    for key in sorted(k for k in data if isinstance(k, str) and 'point' in k.lower()):
        value = data[key]
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(v, (list, tuple)) for v in value)):
            candidates = list(value)  # "points": [[x, y], [x, y]]
        else:
            candidates = [value]
        for candidate in candidates:
            point = _numbers(candidate, 2)
            if point is not None and len(parsed.points) < 2:
                parsed.points.append((clamp(point[0]), clamp(point[1])))
    return parsed
