"""Offline instruction engine: semantic, attribute and conditional instructions from labels.

For one label map the engine first makes *drafts* (what to ask: type, class, target and
anchor objects, relation), then renders them to text with the built-in templates, or hands
attribute and conditional drafts to the GPT-4o writer. Drafts depend only on the label map,
the image name and the seed, so the same inputs give the same instruction set on any machine,
in any order, with any number of workers.
"""
import math
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .objects import SceneObject, class_areas, encode_rle, extract_objects
from .records import ImageInstructions, ObjectRef, Query
from .relations import RelationRules, unique_relations
from .vocabulary import ANSWERS, render_text

# Bump when a change of the engine changes the instructions it makes for the same inputs.
# 3: objects of instance classes come from the instance map where the data has one.
# 4: classes are named by their display names (PanNuke's "dead cells"; Cityscapes unchanged).
ENGINE_VERSION = 4


@dataclass
class Draft:
    """What one instruction asks for, before it is put into words."""
    type: str
    class_id: int
    target: Optional[SceneObject] = None
    anchor: Optional[SceneObject] = None
    relation: Optional[str] = None


@dataclass
class EngineStats:
    """Counts over the images an engine has processed."""
    images: int = 0
    queries: Dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(('semantic', 'attribute', 'conditional'), 0))
    ambiguous_pairs: int = 0
    targets_without_relation: int = 0


class InstructionEngine:
    """Builds the instruction set of labeled images from their semantic label maps.

    Args:
        class_names (Sequence[str]): Names of the label ids (index = id).
        vocabulary (dict[str, tuple[str, str]]): Class name -> (description, synonym); classes
            missing here are skipped.
        object_classes (Sequence[str]): Classes whose objects may be targets and anchors of
            conditional instructions.
        instance_classes (Sequence[str]): Object classes whose objects are read from the instance
            map when :meth:`draft` gets one (Cityscapes' classes with instances); other classes, and
            every class without an instance map, use connected components.
        ground_classes (Sequence[str]): Object classes that stand on the ground (depth relations).
        mounted_classes (Sequence[str]): Classes that ride on a ``mount_classes`` object: a rider on
            its bicycle is above it, not behind it.
        mount_classes (Sequence[str]): Vehicles a mounted class rides.
        seed (int): Master seed; an image's instructions depend on (seed, image name) only.
        min_object_area (float): Smallest component, as a fraction of the image area, that counts as
            an object.
        min_object_side (float): Narrowest object box, as a fraction of the image height (drops the
            slivers occluders leave).
        min_class_area (float): Smallest class region, as a fraction of the image area, that gets
            semantic and attribute instructions.
        conditional_per_image (int): Conditional instructions wanted per image (fewer when no
            unambiguous target-anchor pair remains).
        same_class_anchor (bool): Whether the anchor may be of the target's class.
        ignore_index (int): Void label.
        display_names (dict[str, tuple[str, str]], optional): Label -> (class phrase, object phrase)
            where the label is no noun (``DISPLAY_NAMES[dataset]``); the instruction text uses them,
            records keep labels.
    """

    def __init__(self,
                 class_names: Sequence[str],
                 vocabulary: Dict[str, Tuple[str, str]],
                 object_classes: Sequence[str],
                 ground_classes: Sequence[str] = (),
                 instance_classes: Sequence[str] = (),
                 mounted_classes: Sequence[str] = ('rider', ),
                 mount_classes: Sequence[str] = ('bicycle', 'motorcycle'),
                 seed: int = 0,
                 min_object_area: float = 4e-4,
                 min_object_side: float = 0.03,
                 min_class_area: float = 1e-3,
                 conditional_per_image: int = 4,
                 same_class_anchor: bool = True,
                 ignore_index: int = 255,
                 display_names: Optional[Dict[str, Tuple[str, str]]] = None) -> None:
        self.class_names = list(class_names)
        for name in list(object_classes) + list(ground_classes) + list(instance_classes):
            if name not in self.class_names:
                raise ValueError(f'object/ground/instance class {name!r} is not among '
                                 f'{self.class_names}')
        self.vocabulary = vocabulary
        self.object_ids = [self.class_names.index(n) for n in object_classes]
        self.instance_ids = [self.class_names.index(n) for n in instance_classes]
        self.rules = RelationRules(
            frozenset(self.class_names.index(n) for n in ground_classes),
            frozenset(self.class_names.index(n) for n in mounted_classes if n in self.class_names),
            frozenset(self.class_names.index(n) for n in mount_classes if n in self.class_names))
        self.seed = seed
        self.min_object_area = min_object_area
        self.min_object_side = min_object_side
        self.min_class_area = min_class_area
        self.conditional_per_image = conditional_per_image
        self.same_class_anchor = same_class_anchor
        self.ignore_index = ignore_index
        self.display_names = dict(display_names or {})
        self.stats = EngineStats()

    def settings(self) -> dict:
        """The parameters that shape the instructions (recorded in instruction files)."""
        return dict(
            min_object_area=self.min_object_area,
            min_object_side=self.min_object_side,
            min_class_area=self.min_class_area,
            conditional_per_image=self.conditional_per_image,
            same_class_anchor=self.same_class_anchor)

    def rng_for(self, image: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(image.encode('utf-8'))])

    def draft(self,
              image: str,
              label_map: np.ndarray,
              instance_map: Optional[np.ndarray] = None) -> Tuple[List[Draft], List[SceneObject]]:
        """Decide the instructions of one image.

        Args:
            image (str): Image name (seeds its random choices).
            label_map (np.ndarray): (H, W) class ids.
            instance_map (np.ndarray, optional): (H, W) Cityscapes-style instance ids, or None
                (components).

        Returns:
            The drafts (semantic, attribute, then conditional) and the image's objects.
        """
        rng = self.rng_for(image)
        pixels = label_map.size
        drafts = []
        for class_id, area in sorted(class_areas(label_map, self.ignore_index).items()):
            if (class_id < len(self.class_names) and area >= self.min_class_area * pixels
                    and self.class_names[class_id] in self.vocabulary):
                drafts += [Draft('semantic', class_id), Draft('attribute', class_id)]
        objects = extract_objects(label_map, self.object_ids,
                                  max(1, int(self.min_object_area * pixels)),
                                  max(1, math.ceil(self.min_object_side * label_map.shape[0])),
                                  instance_map, self.instance_ids)
        drafts += self._conditional_drafts(objects, rng)
        return drafts, objects

    def _conditional_drafts(self, objects: List[SceneObject],
                            rng: np.random.Generator) -> List[Draft]:
        drafts = []
        for t in rng.permutation(len(objects)):
            if len(drafts) >= self.conditional_per_image:
                break
            target = objects[t]
            anchors = [
                objects[a] for a in rng.permutation(len(objects))
                if a != t and (self.same_class_anchor or objects[a].class_id != target.class_id)
            ]
            for anchor in anchors:
                relations = unique_relations(target, anchor, objects, self.rules)
                if relations:
                    relation = relations[int(rng.integers(len(relations)))]
                    drafts.append(Draft('conditional', target.class_id, target, anchor, relation))
                    break
                self.stats.ambiguous_pairs += 1
            else:
                self.stats.targets_without_relation += 1
        return drafts

    def object_ref(self, obj: SceneObject) -> ObjectRef:
        return ObjectRef(obj.class_id, self.class_names[obj.class_id], list(obj.bbox),
                         encode_rle(obj.mask))

    def render(self, draft: Draft, rng: np.random.Generator) -> Query:
        """Put a draft into words with the built-in templates."""
        name = self.class_names[draft.class_id]
        answer = ANSWERS[int(rng.integers(len(ANSWERS)))]
        anchor = self.class_names[draft.anchor.class_id] if draft.anchor else None
        text = render_text(draft.type, name, self.vocabulary, lambda n: int(rng.integers(n)),
                           draft.relation, anchor, self.display_names)
        return self.to_query(draft, text, answer, 'builtin')

    def to_query(self, draft: Draft, text: str, answer: str, source: str) -> Query:
        return Query(
            type=draft.type,
            text=text,
            answer=answer,
            class_id=draft.class_id,
            class_name=self.class_names[draft.class_id],
            target=self.object_ref(draft.target) if draft.target else None,
            anchor=self.object_ref(draft.anchor) if draft.anchor else None,
            relation=draft.relation,
            source=source)

    def count(self, record: ImageInstructions) -> None:
        self.stats.images += 1
        for query in record.queries:
            self.stats.queries[query.type] += 1
