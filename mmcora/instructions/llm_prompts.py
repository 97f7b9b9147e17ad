"""What the GPT-4o instruction writer shows the LLM and what it accepts back.

Prompt text (our own wording), the objects as polygons, the downscaled image, the request
parameters with their JSON schemas, and the checks of the replies.

CORA (§3.4) asks GPT-4o for attribute and conditional instructions from the image, the
objects' mask polygons and class descriptions, with the camera as the frame of reference.
Every wording change here must bump :data:`PROMPT_VERSION`: the version is part of the cache
key, so cached answers to an old prompt are not reused for a new one.

Objects are shown as boxes and polygon outlines in the pixel frame of the *attached* image
(after any downscaling), one object per line::

    - car: box [x0, y0, x1, y1]; outlines [[[x,y],[x,y],...],...]

The replies are checked by :func:`check_attribute` and :func:`check_conditional`, which go
further than the JSON schema sent with the request (not every server enforces it).
"""
import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .vocabulary import ANCHOR_PLACEHOLDER, RELATION_PHRASES, SEG_TOKEN

PROMPT_VERSION = 1

# Sampling parameters are part of the cache key as well (see llm_writer.py).
TEMPERATURE = 0.7
MAX_COMPLETION_TOKENS = 400

SYSTEM_PROMPT = f"""\
You write training instructions for a reasoning-segmentation model: a user asks for a region
of a photo in natural language, and the model answers with a segmentation mask.

You receive one image and, as text, the objects or class regions in it: their class name,
a bounding box [x0, y0, x1, y1] and polygon outlines [[x, y], ...] in pixel coordinates of
the attached image (origin at the top-left corner, x to the right, y downwards; x1 and y1
are exclusive).

The camera is the frame of reference for every spatial word: "left" and "right" mean left
and right in the image as the camera sees it; "in front of" means nearer to the camera and
"behind" farther from it; "above" and "below" mean higher and lower in the image.

There are two tasks.
1. Attribute instruction: describe the target class by its appearance and its function,
   never by its class name or a word containing it, so that the description fits the
   target and none of the other classes in the scene (e.g. tell a bus from a truck or a
   car, a rider from a pedestrian). Then ask to segment it using only that description.
2. Conditional instruction: ask to segment the target object through its spatial relation
   to the anchor object. The relation is given (it was measured from the geometry); phrase
   it, do not change it. Refer to the anchor by its class name followed by the literal
   placeholder {ANCHOR_PLACEHOLDER} exactly once (e.g. "the bicycle {ANCHOR_PLACEHOLDER}"). Write a
   short answer that contains the literal token {SEG_TOKEN} exactly once where the mask goes
   (e.g. "Sure, it is {SEG_TOKEN}."), and repeat the relation key unchanged.

Use varied, natural English. Reply with one JSON object only, with exactly the keys the
task asks for."""

ATTRIBUTE_TASK = """\
Task: attribute instruction.
Image size: {width}x{height} pixels.
Target class: {name}
Target region:
{target}
Hint (a description of the target class that you may improve): {hint}
Other classes and objects in the scene (the description must not fit these):
{others}

Reply with JSON {{"description": "...", "question": "..."}}:
- description: a noun phrase such as "the ..." that describes the target class by appearance
  and function without the words "{name}";
- question: a request to segment the target that uses the description and does not contain
  the words "{name}"."""

CONDITIONAL_TASK = """\
Task: conditional instruction.
Image size: {width}x{height} pixels.
Target class: {name}
Target object:
{target}
Anchor class: {anchor_name}
Anchor object:
{anchor}
Relation: {relation} (the target is {phrase} the anchor, seen from the camera)

Reply with JSON {{"question": "...", "answer": "...", "relation": "{relation}"}}:
- question: a request to segment the {name} that is {phrase} the {anchor_name}, referring to
  the anchor as "the {anchor_name} {placeholder}" ({placeholder} exactly once);
- answer: a short reply with {seg} exactly once;
- relation: exactly "{relation}"."""

Point = Tuple[int, int]


def format_object(name: str, bbox: Sequence[int], polygons: Sequence[Sequence[Point]],
                  image: 'EncodedImage') -> str:
    """One prompt line per object, in the pixel frame of the (downscaled) image as sent.

    Args:
        name (str): Class name.
        bbox (Sequence[int]): ``(x0, y0, x1, y1)`` in source-image pixels, x1/y1 exclusive.
        polygons (Sequence[Sequence[Point]]): Outlines in source-image pixels.
        image (EncodedImage): The image as sent (gives the scale and the size to clip to).
    """
    scale, width, height = image.scale, image.width, image.height
    x0, y0, x1, y1 = bbox
    box = [
        min(width, max(0, math.floor(x0 * scale))),
        min(height, max(0, math.floor(y0 * scale))),
        min(width, max(0, math.ceil(x1 * scale))),
        min(height, max(0, math.ceil(y1 * scale)))
    ]
    outlines = []
    for polygon in polygons:
        points: List[List[int]] = []
        for x, y in polygon:
            point = [
                min(width - 1, max(0, round(x * scale))),
                min(height - 1, max(0, round(y * scale)))
            ]
            if not points or points[-1] != point:
                points.append(point)
        if len({tuple(p) for p in points}) >= 3:  # tiny outlines collapse; the box remains
            outlines.append(points)
    # Compact JSON: every character of an outline costs prompt tokens.
    outlines_text = json.dumps(outlines, separators=(',', ':'))
    return f'- {name}: box {json.dumps(box)}; outlines {outlines_text}'


def mask_to_polygons(mask: np.ndarray, max_points: int = 32) -> List[List[Point]]:
    """Outer outlines of a binary mask, each simplified to at most ``max_points`` points.

    Holes are left out: the outline is enough for the LLM to locate a region, and every
    point costs prompt tokens.

    Args:
        mask (np.ndarray): (H, W) mask, non-zero inside.
        max_points (int): Most points per polygon (at least 3).

    Returns:
        Polygons as ``(x, y)`` pixel points, largest area first; outlines with fewer than
        3 points or zero area (lines, single pixels) are dropped.
    """
    contours, _ = cv2.findContours(
        np.asarray(mask, dtype=bool).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    found = []
    for contour in contours:
        epsilon = 0.005 * cv2.arcLength(contour, True)
        approx = contour
        # Coarsen until the outline fits the point budget.
        while len(approx) > max(3, max_points):
            approx = cv2.approxPolyDP(contour, epsilon, True)
            epsilon *= 1.5
        area = cv2.contourArea(approx)
        if len(approx) >= 3 and area > 0:
            found.append((-area, [(int(x), int(y)) for x, y in approx.reshape(-1, 2)]))
    return [polygon for _, polygon in sorted(found, key=lambda item: item[0])]


@dataclass(frozen=True)
class EncodedImage:
    """An image as sent: downscaled, JPEG-encoded, with the sha256 of the source file.

    Attributes:
        sha256: Hex digest of the source file's bytes (stands for the image in cache keys).
        width: Width after downscaling.
        height: Height after downscaling.
        scale: Factor from source to sent pixels (<= 1).
        data_url: ``data:image/jpeg;base64,...``.
    """
    sha256: str
    width: int
    height: int
    scale: float
    data_url: str


def encode_image(path: str, max_side: int) -> EncodedImage:
    """Read an image file and downscale it so that its longest side is at most ``max_side``.

    Raises:
        OSError: The file cannot be read.
        ValueError: The file is not an image.
    """
    with open(path, 'rb') as f:
        data = f.read()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f'cannot decode image {path}')
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError(f'cannot encode image {path}')
    url = 'data:image/jpeg;base64,' + base64.b64encode(encoded.tobytes()).decode('ascii')
    return EncodedImage(
        hashlib.sha256(data).hexdigest(), image.shape[1], image.shape[0], scale, url)


def attribute_prompt(width: int, height: int, name: str, target: str, hint: str,
                     others: List[str]) -> str:
    """The user text of an attribute request (objects already formatted)."""
    return ATTRIBUTE_TASK.format(
        width=width,
        height=height,
        name=name,
        target=target,
        hint=hint or '(none)',
        others='\n'.join(others) if others else '(none)')


def conditional_prompt(width: int, height: int, name: str, target: str, anchor_name: str,
                       anchor: str, relation: str) -> str:
    """The user text of a conditional request (objects already formatted)."""
    return CONDITIONAL_TASK.format(
        width=width,
        height=height,
        name=name,
        target=target,
        anchor_name=anchor_name,
        anchor=anchor,
        relation=relation,
        phrase=RELATION_PHRASES[relation],
        placeholder=ANCHOR_PLACEHOLDER,
        seg=SEG_TOKEN)


def messages(user_text: str, image_url: str) -> List[Dict[str, Any]]:
    """Chat messages: the system prompt, then the task text with the image."""
    return [{
        'role': 'system',
        'content': SYSTEM_PROMPT
    }, {
        'role':
        'user',
        'content': [{
            'type': 'text',
            'text': user_text
        }, {
            'type': 'image_url',
            'image_url': {
                'url': image_url,
                'detail': 'high'
            }
        }]
    }]


def _schema(name: str, properties: Dict[str, Any]) -> Dict[str, Any]:
    # Strict structured output: the API itself then rejects missing or extra keys; our own
    # validation in llm_writer.py still runs, for servers that ignore the schema.
    return {
        'type': 'json_schema',
        'json_schema': {
            'name': name,
            'strict': True,
            'schema': {
                'type': 'object',
                'properties': properties,
                'required': sorted(properties),
                'additionalProperties': False
            }
        }
    }


def attribute_response_format() -> Dict[str, Any]:
    """``response_format`` of an attribute request."""
    return _schema('attribute_instruction', {
        'description': {
            'type': 'string'
        },
        'question': {
            'type': 'string'
        }
    })


def conditional_response_format(relation: str) -> Dict[str, Any]:
    """``response_format`` of a conditional request; the relation is fixed by an enum."""
    return _schema(
        'conditional_instruction', {
            'question': {
                'type': 'string'
            },
            'answer': {
                'type': 'string'
            },
            'relation': {
                'type': 'string',
                'enum': [relation]
            }
        })


def request_params(response_format: Dict[str, Any]) -> Dict[str, Any]:
    """Keyword arguments of ``chat.completions.create`` besides model and messages."""
    return dict(
        temperature=TEMPERATURE,
        max_completion_tokens=MAX_COMPLETION_TOKENS,
        response_format=response_format)


def shorten(text: Any, limit: int = 120) -> str:
    """One line of at most ``limit`` characters (for error messages and logs)."""
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit] + '...'


def decode_reply(completion: Any) -> Any:
    """The JSON value in the first choice of a chat completion.

    Raises:
        ValueError: No message, a refusal, a cut-off reply, or text that is not JSON.
    """
    try:
        choice = completion.choices[0]
        content, finish = choice.message.content, choice.finish_reason
        refusal = getattr(choice.message, 'refusal', None)
    except (AttributeError, IndexError, TypeError):
        raise ValueError('the completion has no choices[0].message') from None
    if refusal:
        raise ValueError(f'the model refused: {shorten(refusal)}')
    if finish == 'length':
        raise ValueError('the reply was cut off (finish_reason=length)')
    if not isinstance(content, str):
        raise ValueError('the message has no text content')
    try:
        return json.loads(content)
    except json.JSONDecodeError as error:
        raise ValueError(f'not valid JSON ({error.msg}): {shorten(content)}') from None


def _text(data: Dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'key {key!r} must be a non-empty string, got {value!r}')
    return value.strip()


def names_class(text: str, class_name: str) -> bool:
    """Whether ``text`` names ``class_name`` (case-insensitive, whole words, plural too)."""
    words = r'\s+'.join(re.escape(word) for word in class_name.split())
    return re.search(rf'\b{words}(s|es)?\b', text, flags=re.IGNORECASE) is not None


def _object(data: Any) -> Dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f'expected a JSON object, got {type(data).__name__}')
    return data


def check_attribute(data: Any, class_name: str) -> Tuple[str, str]:
    """Validate an attribute reply.

    Returns:
        ``(description, question)``, stripped.

    Raises:
        ValueError: A key is missing, empty or not a string, or the class is named.
    """
    data = _object(data)
    description, question = _text(data, 'description'), _text(data, 'question')
    for key, text in (('description', description), ('question', question)):
        if names_class(text, class_name):
            raise ValueError(f'{key} names the class {class_name!r}: {text!r}')
    return description, question


def check_conditional(data: Any, relation: str) -> Tuple[str, str, str]:
    """Validate a conditional reply.

    Returns:
        ``(question, answer, relation)``, stripped.

    Raises:
        ValueError: A key is missing or empty, the placeholder or the mask token is missing
            or repeated, or the relation differs from the one judged from geometry.
    """
    data = _object(data)
    question, answer = _text(data, 'question'), _text(data, 'answer')
    replied = _text(data, 'relation')
    if question.count(ANCHOR_PLACEHOLDER) != 1:
        raise ValueError(f'question must contain {ANCHOR_PLACEHOLDER} exactly once: {question!r}')
    if answer.count(SEG_TOKEN) != 1 or SEG_TOKEN in question:
        raise ValueError(f'answer must contain {SEG_TOKEN} exactly once (the question none): '
                         f'{answer!r}')
    if replied != relation:
        raise ValueError(f'relation {replied!r} differs from the requested {relation!r}')
    return question, answer, replied
