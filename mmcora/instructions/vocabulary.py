"""Built-in language for instructions: templates, answers, class descriptions, query banks.

Everything here is our own wording. Descriptions are written to tell similar classes apart
(car / truck / bus, person / rider, inflammatory / neoplastic nuclei), because attribute
instructions name a class only through its description.
"""
from typing import Dict, List, Optional, Tuple

# The text that stands for the anchor object in a conditional instruction. The model replaces
# it with the anchor's mask and box encodings (one placeholder token each).
from ..utils.special_tokens import ANCHOR_PLACEHOLDER, DEFAULT_ANSWER, SEG_TOKEN  # noqa: F401

SEMANTIC_TEMPLATES: Tuple[str, ...] = (
    'Can you segment the {name} in this image?',
    'Please segment the {name} in this picture.',
    'Segment the {name}.',
    'Where is the {name} in this image? Please answer with a segmentation mask.',
    'Show me the {name} as a segmentation mask.',
    'Mark all pixels of the {name} in this image.',
)
ATTRIBUTE_TEMPLATES: Tuple[str, ...] = (
    'Can you segment {description}?',
    'Please segment {description} in this image.',
    'Show me {description} as a segmentation mask.',
    'Highlight {description} with a mask.',
    'Find all regions showing {description}.',
)
CONDITIONAL_TEMPLATES: Tuple[str, ...] = (
    'Can you segment the {target} that is {relation} the {anchor} ' + ANCHOR_PLACEHOLDER + '?',
    'Please segment the {target} {relation} the {anchor} ' + ANCHOR_PLACEHOLDER + '.',
    'Which {target} is {relation} the {anchor} ' + ANCHOR_PLACEHOLDER +
    '? Please output its segmentation mask.',
    'Segment the {target} located {relation} the marked {anchor} ' + ANCHOR_PLACEHOLDER + '.',
)
ANSWERS: Tuple[str, ...] = (
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Here is the mask: {SEG_TOKEN}.',
    f'Sure, the segmentation is {SEG_TOKEN}.',
    DEFAULT_ANSWER,
)

# Relation name -> phrase used in text. Judged in the camera frame (see relations.py).
RELATION_PHRASES: Dict[str, str] = {
    'left': 'to the left of',
    'right': 'to the right of',
    'above': 'above',
    'below': 'below',
    'front': 'in front of',
    'behind': 'behind',
    'next_to': 'next to',
}

# class name -> (description for attribute instructions, a synonym for query rephrasings)
CITYSCAPES_VOCABULARY: Dict[str, Tuple[str, str]] = {
    'road': ('the paved surface that cars and bicycles drive on', 'street surface'),
    'sidewalk': ('the raised paved walkway for pedestrians beside the road', 'pavement'),
    'building': ('the houses and multi-storey structures with walls and windows', 'buildings'),
    'wall': ('the free-standing walls that are not part of a building', 'stone wall'),
    'fence': ('the fences or railings made of bars, wire or planks', 'railing'),
    'pole': ('the thin vertical poles that carry signs or lights', 'post'),
    'traffic light': ('the signal lights that tell traffic when to stop and go', 'signal light'),
    'traffic sign': ('the plates with symbols or text that regulate traffic', 'road sign'),
    'vegetation': ('the trees, bushes and hedges', 'greenery'),
    'terrain': ('the grass and bare soil on the ground', 'grass'),
    'sky': ('the open sky above the scene', 'sky area'),
    'person': ('the pedestrians who walk or stand on their own feet', 'pedestrian'),
    'rider': ('the people riding on a bicycle or motorcycle', 'cyclist'),
    'car': ('the four-wheeled passenger vehicles for personal transport', 'automobile'),
    'truck': ('the heavy vehicles with a cargo box for hauling goods', 'lorry'),
    'bus': ('the long, tall vehicles with many windows that carry many passengers', 'coach'),
    'train': ('the rail vehicles running on tracks', 'tram'),
    'motorcycle': ('the motorised two-wheelers with an engine', 'motorbike'),
    'bicycle': ('the pedal-powered two-wheelers', 'bike'),
}
PANNUKE_VOCABULARY: Dict[str, Tuple[str, str]] = {
    'neoplastic': ('the large tumour cell nuclei with irregular outlines and coarse, dark '
                   'chromatin', 'tumour nuclei'),
    'inflammatory':
    ('the small, round, densely stained nuclei of immune cells', 'immune cell nuclei'),
    'connective':
    ('the elongated, spindle-shaped nuclei of the stromal connective tissue', 'stromal nuclei'),
    'dead': ('the shrunken or fragmented nuclei of dying cells', 'apoptotic nuclei'),
    'epithelial': ('the regular, oval nuclei of the normal epithelial lining', 'epithelial nuclei'),
}
VOCABULARIES: Dict[str, Dict[str, Tuple[str, str]]] = {
    'cityscapes': CITYSCAPES_VOCABULARY,
    'pannuke': PANNUKE_VOCABULARY,
}
# How instructions name a class where its label is no noun: class name -> (the class as a
# whole, for semantic instructions and the query bank; one object of it, for the target and
# anchor of conditional instructions). PanNuke's labels are adjectives ("Segment the dead." is
# no request). Classes not listed are named by their label. Kept apart from VOCABULARIES, whose
# wording is the tiny LLaVA's tokenizer corpus (changing it would retrain the toy foundation).
DISPLAY_NAMES: Dict[str, Dict[str, Tuple[str, str]]] = {
    'cityscapes': {},
    'pannuke': {
        'neoplastic': ('neoplastic cells', 'neoplastic cell'),
        'inflammatory': ('inflammatory cells', 'inflammatory cell'),
        'connective': ('connective tissue cells', 'connective tissue cell'),
        'dead': ('dead cells', 'dead cell'),
        'epithelial': ('epithelial cells', 'epithelial cell'),
    },
}

# Query-bank rephrasings; {name}, {synonym} and {description} are filled per class.
QUERY_BANK_TEMPLATES: Tuple[str, ...] = (
    'Segment the {name} in this image.',
    'Can you segment the {synonym}?',
    'Please highlight {description}.',
    'Point out {description} with a segmentation mask.',
    'Mark every pixel that belongs to the {name}.',
    'Show me the {synonym} in this picture as a mask.',
    'Which regions show {description}? Respond with a mask.',
    'Outline the {name} in this scene.',
)


def display_name(name: str,
                 display: Optional[Dict[str, Tuple[str, str]]] = None,
                 one: bool = False) -> str:
    """How text names class ``name``: its entry in ``display`` (a ``DISPLAY_NAMES`` value;
    ``one`` for a single object of it) or, without one, the label itself."""
    if display and name in display:
        return display[name][1 if one else 0]
    return name


def render_text(kind: str,
                name: str,
                vocabulary: Dict[str, Tuple[str, str]],
                draw,
                relation: str = None,
                anchor: str = None,
                display: Optional[Dict[str, Tuple[str, str]]] = None) -> str:
    """An instruction of ``kind`` for class ``name`` in a template chosen by ``draw(n)``
    (an index below n): semantic (the class's display name), attribute (its description) or
    conditional (target object, relation phrase, anchor object and the anchor placeholder).
    ``display`` maps labels to display names (``DISPLAY_NAMES[dataset]``)."""
    if kind == 'semantic':
        return SEMANTIC_TEMPLATES[draw(
            len(SEMANTIC_TEMPLATES))].format(name=display_name(name, display))
    if kind == 'attribute':
        return ATTRIBUTE_TEMPLATES[draw(
            len(ATTRIBUTE_TEMPLATES))].format(description=vocabulary[name][0])
    if kind == 'conditional':
        return CONDITIONAL_TEMPLATES[draw(len(CONDITIONAL_TEMPLATES))].format(
            target=display_name(name, display, one=True),
            relation=RELATION_PHRASES[relation],
            anchor=display_name(anchor, display, one=True))
    raise ValueError(f'no built-in templates for instructions of type {kind!r}')


def builtin_query_bank(
        vocabulary: Dict[str, Tuple[str, str]],
        display: Optional[Dict[str, Tuple[str, str]]] = None) -> Dict[str, List[str]]:
    """K = len(QUERY_BANK_TEMPLATES) equivalent queries per class of a vocabulary, keyed by
    label; the text names each class by its display name."""
    return {
        name: [
            t.format(name=display_name(name, display), synonym=synonym, description=description)
            for t in QUERY_BANK_TEMPLATES
        ]
        for name, (description, synonym) in vocabulary.items()
    }
