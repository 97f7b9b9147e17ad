"""Spatial relations between two objects, judged in the camera frame from geometry.

The camera is the frame of reference (as the CORA paper prescribes for its GPT-4o prompts):
"left of" means left in the image. For objects standing on the ground, depth comes from the
ground contact: of two objects in the same line of sight, the one whose lowest row is lower in
the image is nearer, i.e. "in front of"; image-plane "above/below" is used only when an object
does not stand on the ground (a traffic sign above a car).

An instruction must single out its target among the objects of the target's class:
:func:`unique_relations` keeps only relations that hold for the target and for no other
object of its class.
"""
from dataclasses import dataclass, field
from typing import FrozenSet, List, Sequence

from .objects import SceneObject


@dataclass(frozen=True)
class RelationRules:
    """Thresholds of the relation judgements (fractions of object sizes).

    Args:
        ground_classes (frozenset[int]): Classes that stand on the ground (depth relations apply).
        mounted_classes (frozenset[int]): Classes that ride on a mount (a rider).
        mount_classes (frozenset[int]): Classes that are ridden (bicycle, motorcycle). A mounted
            object sitting on a mount (same line of sight, its lowest row at the mount's top half)
            is ``above`` it and the mount ``below``; depth does not apply to the pair.
        separation (float): Overlap tolerated for left/right/above/below, as a fraction of the
            smaller object's extent along that axis.
        line_of_sight (float): Minimum horizontal overlap, as a fraction of the narrower object,
            for two ground objects to be in front of / behind each other.
        depth_margin (float): Minimum ground-contact difference for front/behind, as a fraction of
            the taller object's height.
        next_to_gap (float): Largest horizontal gap for "next to", as a fraction of mean width.
        next_to_depth (float): Largest ground-contact difference for "next to", as a fraction of
            mean height.
    """
    ground_classes: FrozenSet[int] = field(default_factory=frozenset)
    mounted_classes: FrozenSet[int] = field(default_factory=frozenset)
    mount_classes: FrozenSet[int] = field(default_factory=frozenset)
    separation: float = 0.1
    line_of_sight: float = 0.3
    depth_margin: float = 0.15
    next_to_gap: float = 0.6
    next_to_depth: float = 0.15


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _rides(rider: SceneObject, mount: SceneObject, rules: RelationRules) -> bool:
    """Whether ``rider`` sits on ``mount``: over it, feet within its upper half."""
    if rider.class_id not in rules.mounted_classes or mount.class_id not in rules.mount_classes:
        return False
    sight = _overlap(rider.bbox[0], rider.bbox[2], mount.bbox[0], mount.bbox[2])
    if sight < rules.line_of_sight * min(rider.width, mount.width):
        return False
    mid = (mount.bbox[1] + mount.bbox[3]) / 2
    return mount.bbox[1] - 0.25 * mount.height <= rider.ground_y <= mid


def relations_between(target: SceneObject, anchor: SceneObject, rules: RelationRules) -> List[str]:
    """All relations ``target <relation> anchor`` that hold, in a fixed order.

    Names: ``left``, ``right``, ``above``, ``below``, ``front``, ``behind``, ``next_to``.
    """
    t0, ty0, t1, ty1 = target.bbox
    a0, ay0, a1, ay1 = anchor.bbox
    found = []
    tol_x = rules.separation * min(target.width, anchor.width)
    if t1 <= a0 + tol_x:
        found.append('left')
    if t0 >= a1 - tol_x:
        found.append('right')
    both_grounded = (
        target.class_id in rules.ground_classes and anchor.class_id in rules.ground_classes)
    mounted = _rides(target, anchor, rules) or _rides(anchor, target, rules)
    if mounted:
        found.append('above' if _rides(target, anchor, rules) else 'below')
    elif both_grounded:
        sight = _overlap(t0, t1, a0, a1) / max(1, min(target.width, anchor.width))
        margin = rules.depth_margin * max(target.height, anchor.height)
        if sight >= rules.line_of_sight:
            if target.ground_y >= anchor.ground_y + margin:
                found.append('front')
            elif target.ground_y <= anchor.ground_y - margin:
                found.append('behind')
        gap = max(a0 - t1, t0 - a1)
        mean_w = (target.width + anchor.width) / 2
        mean_h = (target.height + anchor.height) / 2
        if (0 <= gap <= rules.next_to_gap * mean_w
                and abs(target.ground_y - anchor.ground_y) <= rules.next_to_depth * mean_h):
            found.append('next_to')
    elif max(a0 - t1, t0 - a1) <= max(target.width, anchor.width):
        # "above" means over, not anywhere higher: the objects must be horizontally close
        tol_y = rules.separation * min(target.height, anchor.height)
        if ty1 <= ay0 + tol_y:
            found.append('above')
        if ty0 >= ay1 - tol_y:
            found.append('below')
    return found


def unique_relations(target: SceneObject, anchor: SceneObject, objects: Sequence[SceneObject],
                     rules: RelationRules) -> List[str]:
    """Relations of ``target`` to ``anchor`` that no other object of the target's class has.

    Args:
        target (SceneObject): The object the instruction asks for.
        anchor (SceneObject): The reference object (shown to the model by its mask and box).
        objects (Sequence[SceneObject]): Every object of the image.
        rules (RelationRules): Thresholds.

    Returns:
        The relations, in the order of :func:`relations_between`; empty when every relation
        of the pair would also describe another object of the target's class.
    """
    rivals = [
        o for o in objects
        if o.class_id == target.class_id and o.index not in (target.index, anchor.index)
    ]
    result = []
    for relation in relations_between(target, anchor, rules):
        if not any(relation in relations_between(o, anchor, rules) for o in rivals):
            result.append(relation)
    return result
