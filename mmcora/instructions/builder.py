"""Build the instruction set of a split: label maps -> drafts -> words -> JSONL file."""
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from ..utils.class_names import CITYSCAPES_CLASSES, PANNUKE_CLASSES
from ..utils.name_lists import read_name_list
from .engine import ENGINE_VERSION, Draft, InstructionEngine
from .objects import mask_bbox
from .records import ImageInstructions, make_header, write_instruction_file
from .vocabulary import DISPLAY_NAMES, VOCABULARIES

GROUND_THINGS = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


@dataclass(frozen=True)
class DatasetLayout:
    """Where a data set keeps images and label maps, and which classes are objects."""
    img_dir: str
    img_suffix: str
    seg_dir: str
    seg_suffix: str
    classes: Tuple[str, ...]
    object_classes: Tuple[str, ...]
    ground_classes: Tuple[str, ...]
    vocabulary: str
    instance_suffix: Optional[str] = None
    instance_classes: Tuple[str, ...] = ()

    def paths(self, data_root: str, split: str, name: str) -> Tuple[str, str]:
        return (osp.join(data_root, self.img_dir.format(split=split), name + self.img_suffix),
                osp.join(data_root, self.seg_dir.format(split=split), name + self.seg_suffix))

    def instance_path(self, data_root: str, split: str, name: str) -> Optional[str]:
        """The instance map's path beside the label map, or None if the layout has none."""
        if self.instance_suffix is None:
            return None
        return osp.join(data_root, self.seg_dir.format(split=split), name + self.instance_suffix)


LAYOUTS: Dict[str, DatasetLayout] = {
    'cityscapes':
    DatasetLayout(
        'leftImg8bit/{split}',
        '_leftImg8bit.png',
        'gtFine/{split}',
        '_gtFine_labelTrainIds.png',
        CITYSCAPES_CLASSES,
        GROUND_THINGS + ('pole', 'traffic light', 'traffic sign'),
        GROUND_THINGS + ('pole', ),
        'cityscapes',
        # Cityscapes' classes with instances (hasInstances in cityscapesscripts' labels).
        instance_suffix='_gtFine_instanceIds.png',
        instance_classes=GROUND_THINGS),
    # Names carry the fold (fold1/fold1_0000), so the directories take no split. Nuclei lie
    # in the section plane: no ground contact, hence no in-front-of/behind relations.
    'pannuke':
    DatasetLayout('img_dir', '.png', 'ann_dir', '.png', PANNUKE_CLASSES, PANNUKE_CLASSES[1:], (),
                  'pannuke'),
}


def load_label_map(path: str, what: str = 'label map') -> np.ndarray:
    """Read a one-channel label (or instance) map as stored (uint8 or uint16).

    Raises:
        FileNotFoundError: The file is missing or unreadable (named).
        ValueError: The file has more than one channel.
    """
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise FileNotFoundError(f'{what} missing or unreadable: {path}')
    if label.ndim != 2:
        raise ValueError(f'{path}: a {what} must have one channel, got shape {label.shape}')
    return label


def load_instance_map(path: Optional[str], label_map: np.ndarray) -> Optional[np.ndarray]:
    """The instance map at ``path`` if it exists (None otherwise), checked against the labels.

    Raises:
        ValueError: The instance map's size differs from the label map's (both named).
    """
    if path is None or not osp.isfile(path):
        return None
    instances = load_label_map(path, 'instance map')
    if instances.shape != label_map.shape:
        raise ValueError(f'{path}: instance map is {instances.shape}, its label map is '
                         f'{label_map.shape}')
    return instances


def default_output(data_root: str, ann_file: str) -> str:
    """``splits/1_30/labeled.txt`` -> ``<root>/instructions/1_30_labeled.jsonl``."""
    stem = osp.splitext(ann_file)[0]
    parts = [p for p in stem.split(osp.sep) if p not in ('splits', '')]
    return osp.join(data_root, 'instructions', '_'.join(parts) + '.jsonl')


def _llm_requests(engine: InstructionEngine, drafts: Sequence[Draft], label_map: np.ndarray,
                  image: str, image_path: str) -> List[Tuple[int, object]]:
    """(draft index, request) for the drafts the LLM writer words."""
    from .llm_writer import AttributeRequest, ConditionalRequest, ObjectInfo, mask_to_polygons

    def info(class_id: int, mask: np.ndarray) -> ObjectInfo:
        return ObjectInfo(engine.class_names[class_id], tuple(mask_bbox(mask)),
                          mask_to_polygons(mask))

    requests = []
    regions = {}  # class id -> ObjectInfo of its whole region, made once per image
    for index, draft in enumerate(drafts):
        name = engine.class_names[draft.class_id]
        item = f'{image}#{index}:{draft.type}:{name}'
        if draft.type == 'attribute':
            if not regions:
                regions = {
                    c: info(c, label_map == c)
                    for c in np.unique(label_map).tolist() if c < len(engine.class_names)
                }
            others = [region for c, region in regions.items() if c != draft.class_id]
            requests.append((index,
                             AttributeRequest(item, image_path, regions[draft.class_id],
                                              engine.vocabulary[name][0], others)))
        elif draft.type == 'conditional':
            requests.append((index,
                             ConditionalRequest(item, image_path,
                                                info(draft.class_id, draft.target.mask),
                                                info(draft.anchor.class_id, draft.anchor.mask),
                                                draft.relation)))
    return requests


def build_instruction_set(data_root: str,
                          dataset: str,
                          split: str,
                          ann_file: str,
                          out: Optional[str] = None,
                          seed: int = 0,
                          writer=None,
                          **engine_kwargs) -> dict:
    """Write the instruction file of one split and return a summary.

    Args:
        data_root (str): Data set root (holds images, label maps and ``ann_file``).
        dataset (str): Layout name in :data:`LAYOUTS`.
        split (str): ``'train'`` or ``'val'`` (the image and label sub-directory).
        ann_file (str): Split list relative to ``data_root``.
        out (str, optional): Output path; default :func:`default_output`.
        seed (int): Master seed of the engine.
        writer (LLMInstructionWriter, optional): An ``LLMInstructionWriter`` for attribute and
            conditional wording, or None for the built-in templates.
        **engine_kwargs (dict): Further :class:`InstructionEngine` arguments.

    Raises:
        FileNotFoundError: Before any work, naming the first missing list or label map.
    """
    if dataset not in LAYOUTS:
        raise ValueError(f'unknown dataset {dataset!r}; known: {sorted(LAYOUTS)}')
    layout = LAYOUTS[dataset]
    names = read_name_list(osp.join(data_root, ann_file))
    paths = [layout.paths(data_root, split, name) for name in names]
    missing = [seg for _, seg in paths if not osp.isfile(seg)]
    if missing:
        raise FileNotFoundError(f'{len(missing)} label maps listed in {ann_file} are missing, '
                                f'first: {missing[0]}')
    engine = InstructionEngine(
        layout.classes,
        VOCABULARIES[layout.vocabulary],
        layout.object_classes,
        layout.ground_classes,
        instance_classes=layout.instance_classes,
        seed=seed,
        display_names=DISPLAY_NAMES[layout.vocabulary],
        **engine_kwargs)
    start = time.perf_counter()
    records, pending, with_instances = [], [], 0
    for name, (image_path, seg_path) in zip(names, paths):
        label_map = load_label_map(seg_path)
        instance_map = load_instance_map(layout.instance_path(data_root, split, name), label_map)
        with_instances += instance_map is not None
        drafts, _ = engine.draft(name, label_map, instance_map)
        rng = engine.rng_for(name + '#text')
        queries = [engine.render(d, rng) for d in drafts]
        if writer is not None:
            for index, request in _llm_requests(engine, drafts, label_map, name, image_path):
                pending.append((len(records), index, drafts[index], request))
        records.append(
            ImageInstructions(name, int(label_map.shape[0]), int(label_map.shape[1]), queries))
    if pending:
        results = writer.write([request for *_, request in pending])
        for (record, index, draft, _), result in zip(pending, results):
            query = records[record].queries[index]
            if draft.type == 'attribute':
                records[record].queries[index] = engine.to_query(draft, result.question,
                                                                 query.answer, 'gpt-4o')
            else:
                records[record].queries[index] = engine.to_query(draft, result.question,
                                                                 result.answer, 'gpt-4o')
    for record in records:
        engine.count(record)
    out = out or default_output(data_root, ann_file)
    header = make_header(
        dataset,
        split,
        layout.classes,
        ann_file=ann_file,
        seed=seed,
        writer='gpt-4o' if writer is not None else 'builtin',
        engine_version=ENGINE_VERSION,
        engine=engine.settings(),
        images_with_instance_maps=with_instances)
    write_instruction_file(out, header, records)
    stats = engine.stats
    summary = dict(
        out=out,
        images=stats.images,
        queries=dict(stats.queries),
        images_with_instance_maps=with_instances,
        ambiguous_pairs=stats.ambiguous_pairs,
        targets_without_relation=stats.targets_without_relation,
        seconds=round(time.perf_counter() - start, 2))
    objects = (f'objects from instance maps in {with_instances} of {len(records)} images'
               if layout.instance_suffix else 'objects from connected components')
    print_log(
        f'instructions for {len(records)} images of {ann_file} -> {out}: '
        f'{summary["queries"]} ({objects}) in {summary["seconds"]}s',
        logger='current')
    return summary


__all__ = [
    'LAYOUTS', 'DatasetLayout', 'build_instruction_set', 'default_output', 'load_instance_map',
    'load_label_map'
]
