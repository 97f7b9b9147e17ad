"""Text about a foundation scene: captions and short questions with their answers.

LLaVA learned to see in two stages: projector alignment on image captions (LCS-558K), then
instruction tuning on questions about images (LLaVA-Instruct). The toy miniature writes both
from a scene's own labels: a caption naming the stuff and counting the things, and questions
whose answers the image decides (is a class there, how many objects of a class, on which
side of the image a class is). Our own wording throughout.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ...datasets.toy_city_canvas import LABEL_IDS, THING_CLASSES, VOID
from ...instructions.vocabulary import CITYSCAPES_VOCABULARY
from .corpus import Region

CLASS_NAMES: Tuple[str, ...] = tuple(CITYSCAPES_VOCABULARY)  # index = Cityscapes trainId
SCENE_CLASSES: Tuple[int, ...] = tuple(sorted(c for c in LABEL_IDS if c != VOID))
NUMBERS = ('no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
PLURALS = {'person': 'people', 'bus': 'buses'}
CAPTION_QUESTIONS = ('Describe the image briefly.', 'What does this street scene show?',
                     'Give a short caption of this picture.')
PRESENCE_QUESTION = 'Is there any {name} in the image?'
COUNT_QUESTION = 'How many {plural} are in the image?'
SIDE_QUESTION = 'On which side of the image is the {name}?'
SIDES = ('On the left.', 'In the middle.', 'On the right.')
MIN_FRACTION = 0.005  # a class covering less of the image is not mentioned nor asked about


def plural(name: str) -> str:
    return PLURALS.get(name, name + 's')


def count_phrase(count: int, name: str) -> str:
    word = NUMBERS[count] if count < len(NUMBERS) else 'many'
    return f'{word} {name if count == 1 else plural(name)}'


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ', '.join(words[:-1]) + ' and ' + words[-1]


def caption(train_ids: np.ndarray, regions: List[Region]) -> str:
    """'A street scene with road, building and sky; two cars and one person.'"""
    fractions = class_fractions(train_ids)
    stuff = [
        CLASS_NAMES[c] for c in SCENE_CLASSES
        if c not in THING_CLASSES and fractions.get(c, 0.) >= MIN_FRACTION
    ]
    counts = instance_counts(regions)
    things = [count_phrase(n, CLASS_NAMES[c]) for c, n in sorted(counts.items())]
    text = 'A street scene with ' + (_join(stuff) if stuff else 'nothing in particular')
    return text + ('; ' + _join(things) if things else '') + '.'


def class_fractions(train_ids: np.ndarray) -> Dict[int, float]:
    """trainId -> fraction of the image's pixels (void left out)."""
    ids, counts = np.unique(train_ids, return_counts=True)
    return {int(i): n / train_ids.size for i, n in zip(ids, counts) if i != VOID}


def instance_counts(regions: List[Region]) -> Dict[int, int]:
    """Thing trainId -> number of its instances among the scene's regions."""
    counts: Dict[int, int] = {}
    for region in regions:
        if region.class_id in THING_CLASSES:
            counts[region.class_id] = counts.get(region.class_id, 0) + 1
    return counts


def side_of(train_ids: np.ndarray, class_id: int) -> str:
    """Where the class's pixels are on average: left, middle or right third."""
    xs = np.nonzero(train_ids == class_id)[1]
    third = int(3 * xs.mean() / train_ids.shape[1])
    return SIDES[min(third, 2)]


def scene_questions(rng: np.random.Generator,
                    train_ids: np.ndarray,
                    regions: List[Region],
                    num: int,
                    captions_only: bool = False) -> List[Tuple[str, str]]:
    """``num`` (question, answer) pairs: captions, presence (half absent), counts, sides;
    only caption requests with ``captions_only``."""
    fractions = class_fractions(train_ids)
    present = [c for c in SCENE_CLASSES if fractions.get(c, 0.) >= MIN_FRACTION]
    absent = [c for c in SCENE_CLASSES if c not in fractions]
    counts = instance_counts(regions)
    pairs = []
    for _ in range(num):
        kind = 0 if captions_only else int(rng.choice(4, p=(0.2, 0.3, 0.25, 0.25)))
        if kind == 0 or not present:
            question = CAPTION_QUESTIONS[int(rng.integers(len(CAPTION_QUESTIONS)))]
            pairs.append((question, caption(train_ids, regions)))
        elif kind == 1:
            yes = not absent or rng.random() < 0.5
            class_id = int(rng.choice(present if yes else absent))
            pairs.append(
                (PRESENCE_QUESTION.format(name=CLASS_NAMES[class_id]), 'Yes.' if yes else 'No.'))
        elif kind == 2:
            class_id = int(rng.choice(THING_CLASSES))
            count = counts.get(class_id, 0)
            word = NUMBERS[count] if count < len(NUMBERS) else 'many'
            answer = 'None.' if count == 0 else word.capitalize() + '.'
            pairs.append((COUNT_QUESTION.format(plural=plural(CLASS_NAMES[class_id])), answer))
        else:
            class_id = int(rng.choice(present))
            pairs.append(
                (SIDE_QUESTION.format(name=CLASS_NAMES[class_id]), side_of(train_ids, class_id)))
    return pairs
