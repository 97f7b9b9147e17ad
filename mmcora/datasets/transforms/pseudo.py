"""Pipeline transforms for unlabeled images with pseudo-labels (CORA stage 3).

A typical pipeline (``SemiReasoningDataset``)::

    LoadImageFromFile -> LoadPseudoLabel -> SamplePseudoQueries -> SAMResize -> CLIPInputs
    -> PackReasoningInputs

Per draw, ``SamplePseudoQueries`` picks a class present in the pseudo-label with at least a
minimum area, cuts its binary pseudo-mask and samples K distinct queries of the class from the
query bank: the first one trains, the other K-1 measure output consistency (CORA §3.2.1).
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...instructions.builder import load_label_map
from ...instructions.vocabulary import ANSWERS


@TRANSFORMS.register_module()
class LoadPseudoLabel(BaseTransform):
    """Read the teacher's pseudo-label map and (if listed) its confidence map.

    Adds ``pseudo_label`` (H, W) and ``pseudo_confidence`` (H, W) float32 in [0, 1] (None
    without a confidence file). Reads ``pseudo_path``, ``conf_path`` and ``num_classes``.

    Raises:
        FileNotFoundError / ValueError: A missing file, a map whose size differs from the
            image, or a label outside the classes, naming the file.
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        shape = results['img'].shape[:2]
        path = results['pseudo_path']
        label = load_label_map(path, 'pseudo-label')
        if label.shape != shape:
            raise ValueError(f'pseudo-label {path} is {label.shape}, its image '
                             f'{results["img_path"]} is {shape}')
        bad = (label >= results['num_classes']) & (label != self.ignore_index)
        if bad.any():
            raise ValueError(f'pseudo-label {path} has label {int(label[bad][0])}, outside the '
                             f'{results["num_classes"]} classes (ignore {self.ignore_index})')
        results['pseudo_label'] = label
        conf_path = results.get('conf_path')
        confidence = None
        if conf_path is not None:
            conf = load_label_map(conf_path, 'confidence map')
            if conf.shape != shape:
                raise ValueError(f'confidence map {conf_path} is {conf.shape}, its image is '
                                 f'{shape}')
            confidence = conf.astype(np.float32) / 255.
        results['pseudo_confidence'] = confidence
        return results


@TRANSFORMS.register_module()
class SamplePseudoQueries(BaseTransform):
    """Draw a pseudo-labeled class and K equivalent queries for it.

    The class is drawn uniformly among the classes of ``sample_class_ids`` whose pseudo-label
    area is at least ``min_area_ratio`` of the image (the largest such class when none is).
    Queries come from the item's ``query_bank`` (class name -> list of rephrasings); the answer
    is drawn from the answer templates, as LISA draws them, shared by the K queries.

    Adds ``queries`` (the trained query), ``consistency_queries`` (K-1), ``gt_masks`` (1, H, W)
    uint8 {0, 1} and ``gt_confidence`` (1, H, W) float32 (if a confidence map was read).

    Args:
        num_queries (int): K, queries per draw (CORA: 7).
        min_area_ratio (float): Smallest class area, as a fraction of the image, to be drawn.
        answers (Sequence[str]): Answer templates with ``[SEG]``.
    """

    def __init__(self,
                 num_queries: int = 7,
                 min_area_ratio: float = 0.001,
                 answers: Sequence[str] = ANSWERS) -> None:
        if num_queries < 1:
            raise ValueError(f'num_queries must be at least 1, got {num_queries}')
        self.num_queries, self.min_area_ratio, self.answers = num_queries, min_area_ratio, answers

    def transform(self, results: dict) -> Optional[dict]:
        label = results['pseudo_label']
        ids = np.asarray(results['sample_class_ids'])
        areas = np.bincount(label.ravel(), minlength=256)[ids]
        if not areas.any():
            raise ValueError(f'pseudo-label {results["pseudo_path"]} has none of the sampled '
                             f'classes {list(results["sample_class_names"])}')
        big = np.nonzero(areas >= self.min_area_ratio * label.size)[0]
        pick = np.random.choice(big) if len(big) else int(areas.argmax())
        class_id, name = int(ids[pick]), results['sample_class_names'][pick]
        bank = results['query_bank'][name]
        order = np.random.choice(len(bank), self.num_queries, replace=False)
        answer = self.answers[np.random.randint(len(self.answers))]
        queries = [
            dict(
                text=bank[i],
                answer=answer,
                type='pseudo',
                class_id=class_id,
                class_name=name,
                relation=None,
                source='query_bank',
                target=None,
                anchor=None) for i in order
        ]
        results['queries'], results['consistency_queries'] = queries[:1], queries[1:]
        mask = (label == class_id).astype(np.uint8)
        mask[label == 255] = 255
        results['gt_masks'] = mask[None]
        if results.get('pseudo_confidence') is not None:
            results['gt_confidence'] = results['pseudo_confidence'][None]
        results['anchor_masks'] = [None]
        return results


@TRANSFORMS.register_module()
class CorruptPseudoMask(BaseTransform):
    """Replace the drawn class's pseudo-mask by another class's, with probability ``ratio``.

    A robustness probe (not part of CORA): it simulates a teacher that confuses classes, so
    that the query names one class while the target covers another. Place it right after
    :class:`SamplePseudoQueries`. The wrong class is drawn among the other classes of
    ``sample_class_ids`` present in the pseudo-label (with at least ``min_area_ratio`` of the
    image when some are); an image with no other class keeps its mask. Sets
    ``mask_corrupted`` (bool).

    Args:
        ratio (float): Probability of a replacement per draw, in [0, 1].
        min_area_ratio (float): Preferred smallest area of the wrong class.
    """

    def __init__(self, ratio: float = 0.3, min_area_ratio: float = 0.001) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError(f'ratio must be in [0, 1], got {ratio}')
        self.ratio, self.min_area_ratio = ratio, min_area_ratio

    def transform(self, results: dict) -> dict:
        results['mask_corrupted'] = False
        if np.random.rand() >= self.ratio:
            return results
        label = results['pseudo_label']
        drawn = results['queries'][0]['class_id']
        ids = np.asarray([i for i in results['sample_class_ids'] if i != drawn])
        areas = np.bincount(label.ravel(), minlength=256)[ids] if len(ids) else np.zeros(0)
        present = ids[areas > 0]
        if not len(present):
            return results
        big = ids[areas >= self.min_area_ratio * label.size]
        wrong = int(np.random.choice(big if len(big) else present))
        mask = (label == wrong).astype(np.uint8)
        mask[label == 255] = 255
        results['gt_masks'] = mask[None]
        results['mask_corrupted'] = True
        return results
