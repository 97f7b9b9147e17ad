"""``ReasoningIoUMetric``: LISA's cIoU and gIoU for N binary masks per image."""
import json
import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable


class MaskRecord(NamedTuple):
    """What is kept of one evaluated mask: two pixel counts and the query's labels.

    mmengine pickles and gathers ``results`` across ranks (and turns NamedTuples into plain
    tuples on the way), so a record is four Python scalars and never a mask.
    """

    intersection: int
    union: int
    type: str
    class_name: str


@METRICS.register_module()
class ReasoningIoUMetric(BaseMetric):
    """cIoU and gIoU of reasoning segmentation, with LISA's conventions.

    Every image carries N queries and N predicted / ground-truth binary masks. For each mask
    (LISA, ``train_ds.py::validate`` and ``utils.intersectionAndUnionGPU``):

    - the prediction is ``logit > 0``, applied by the model before the metric sees it;
    - pixels where the ground truth is ``ignore_index`` are removed from both the prediction
      and the ground truth, so a prediction inside an ignore region is neither a hit nor a
      false positive;
    - ``I = |pred ∧ gt|`` and ``U = |pred ∨ gt|`` over the remaining pixels.

    Over the whole dataset:

    - ``cIoU = ΣI / ΣU`` (cumulative IoU; 0 when ``ΣU == 0``). A mask with an empty union
      adds 0/0, i.e. nothing.
    - ``gIoU`` = mean over all masks of ``I / U``, where a mask with ``U == 0`` (empty ground
      truth and empty prediction) scores 1.0. LISA averages per-image means weighted by the
      mask count, which is the same as this per-mask mean.

    LISA divides by ``U + 1e-5`` and adds 1.0 where ``U == 0``; we divide exactly, so the
    values differ from LISA's only by that epsilon (at most ~1e-5 relative per mask). Both
    numbers are reported in percent rounded to 2 decimals, like mmseg's ``IoUMetric``.

    Input contract (``process``' ``data_samples``, one dict per image, as mmengine's
    ``Evaluator`` produces from the model's data samples):

    - ``pred_masks``: bool or {0, 1} tensor of shape (N, H, W);
    - ``gt_masks``: integer tensor of shape (N, H, W) with values 0, 1 and ``ignore_index``;
    - ``queries``: list of N dicts with at least ``type`` (e.g. ``'semantic'``,
      ``'attribute'``, ``'conditional'``) and ``class_name``;
    - ``img_path`` (optional): named in error messages.

    Either mask may also be given as a numpy array or as mmengine's ``PixelData`` dict form
    (``{'data': tensor}``).

    Args:
        ignore_index (int): Ground-truth value excluded from evaluation. Defaults to 255.
        per_class (bool): Log a per-class table (cIoU, gIoU, mask count) and return
            ``cIoU/class/<class_name>`` entries. Defaults to True.
        per_type (bool): Return ``cIoU/<type>`` and ``gIoU/<type>`` for every instruction type
            seen. Defaults to True.
        collect_device (str): Device used to gather results across ranks, ``'cpu'`` or ``'gpu'``.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names; ``default_prefix`` (``'reason'``) when
            None.
        output_dir (str, optional): Also save every predicted mask as ``<image>_q<i>.png`` (0/255)
            there, with the queries and replies in ``<image>.json`` (``tools/test.py --out``).
        keep_results (bool): Accepted for mmseg's ``tools/test.py``; metrics are always computed.
    """

    default_prefix: Optional[str] = 'reason'

    def __init__(self,
                 ignore_index: int = 255,
                 per_class: bool = True,
                 per_type: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 output_dir: Optional[str] = None,
                 keep_results: bool = True) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.output_dir = output_dir
        if output_dir is not None:
            os.makedirs(output_dir, exist_ok=True)
        self.ignore_index = ignore_index
        self.per_class = per_class
        self.per_type = per_type

    # ------------------------------------------------------------------ process

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Reduce every image's masks to per-mask (I, U, type, class_name) records.

        One entry is appended per image (a tuple of its mask records), not per mask:
        mmengine's ``collect_results`` trims the gathered list to the dataset length to drop
        the samples a distributed sampler padded, so entries must match images one to one.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): One dict per image, see the class docstring.
        """
        for index, sample in enumerate(data_samples):
            name = sample.get('img_path', f'data sample #{index} of the batch')
            pred, gt, queries = self._validated_inputs(sample, name)
            if self.output_dir is not None:
                self._save(sample, pred, name)
            intersections, unions = self.intersect_and_union(pred, gt, self.ignore_index)
            self.results.append(
                tuple(
                    MaskRecord(i, u, str(q['type']), str(q['class_name']))
                    for i, u, q in zip(intersections, unions, queries)))

    def _save(self, sample: dict, pred: torch.Tensor, name: str) -> None:
        stem = osp.splitext(osp.basename(name))[0]
        for i, mask in enumerate(pred):
            mmcv.imwrite(
                mask.to(torch.uint8).cpu().numpy() * 255,
                osp.join(self.output_dir, f'{stem}_q{i}.png'))
        with open(osp.join(self.output_dir, f'{stem}.json'), 'w', encoding='utf-8') as f:
            json.dump(
                dict(
                    img_path=name,
                    queries=[q.get('text') for q in sample['queries']],
                    replies=sample.get('pred_texts')),
                f,
                indent=1)

    def _validated_inputs(self, sample: dict,
                          name: str) -> Tuple[torch.Tensor, torch.Tensor, List[dict]]:
        """Fetch and check one image's masks and queries.

        Returns:
            The prediction (N, H, W) bool, the ground truth (N, H, W) and the N queries.

        Raises:
            ValueError: A key is missing, the shapes disagree, the prediction is not binary or
                the ground truth holds values other than 0, 1 and ``ignore_index``.
        """
        for key in ('pred_masks', 'gt_masks', 'queries'):
            if key not in sample:
                raise ValueError(f'{name}: the data sample has no {key!r} '
                                 f'(keys: {sorted(sample)})')
        pred = _as_tensor(sample['pred_masks'])
        gt = _as_tensor(sample['gt_masks']).to(pred.device)
        queries = list(sample['queries'])
        if pred.ndim != 3 or gt.shape != pred.shape:
            raise ValueError(f'{name}: pred_masks {tuple(pred.shape)} and gt_masks '
                             f'{tuple(gt.shape)} must both be (N, H, W) and equal')
        if len(queries) != pred.shape[0]:
            raise ValueError(f'{name}: {len(queries)} queries for {pred.shape[0]} masks')
        for query in queries:
            missing = [key for key in ('type', 'class_name') if key not in query]
            if missing:
                raise ValueError(f'{name}: query {query!r} lacks {missing}')
        if pred.dtype != torch.bool:
            # Float logits passed by mistake would silently become "everything positive".
            if ((pred != 0) & (pred != 1)).any():
                raise ValueError(f'{name}: pred_masks must be binary (logit > 0 applied), '
                                 f'got values other than 0 and 1 ({pred.dtype})')
            pred = pred != 0
        if (((gt != 0) & (gt != 1) & (gt != self.ignore_index))).any():
            raise ValueError(f'{name}: gt_masks may hold only 0, 1 and {self.ignore_index}, '
                             f'got {sorted(torch.unique(gt).tolist())}')
        return pred, gt, queries

    @staticmethod
    def intersect_and_union(pred: torch.Tensor, gt: torch.Tensor,
                            ignore_index: int) -> Tuple[List[int], List[int]]:
        """Per-mask intersection and union outside the ignore region.

        Args:
            pred (Tensor): Binary predictions, bool of shape (N, H, W).
            gt (Tensor): Ground truth of shape (N, H, W) with values 0, 1 and ``ignore_index``.
            ignore_index (int): Ground-truth value whose pixels are left out of both masks.

        Returns:
            Two lists of N Python ints: intersections and unions.
        """
        valid = gt != ignore_index
        pred = pred & valid
        target = (gt == 1) & valid
        intersection = (pred & target).flatten(1).sum(1)
        union = (pred | target).flatten(1).sum(1)
        return intersection.tolist(), union.tolist()

    # ------------------------------------------------------------------ compute

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Aggregate the gathered records into cIoU / gIoU, per type and per class.

        Args:
            results (list): One tuple of mask records per image, as built by :meth:`process`.

        Returns:
            An OrderedDict with ``cIoU``, ``gIoU`` (percent), ``num_masks``, then
            ``cIoU/<type>`` and ``gIoU/<type>`` (if ``per_type``) and
            ``cIoU/class/<class_name>`` (if ``per_class``).
        """
        records = [MaskRecord(*record) for image in results for record in image]
        if not records:
            print_log(
                f'{self.__class__.__name__}: no masks were evaluated',
                logger='current',
                level=logging.WARNING)
        metrics: Dict[str, float] = OrderedDict()
        metrics['cIoU'], metrics['gIoU'] = self._ciou_giou(records)
        metrics['num_masks'] = len(records)
        if self.per_type:
            for type_name, group in _group_by(records, 'type', order=None).items():
                metrics[f'cIoU/{type_name}'], metrics[f'gIoU/{type_name}'] = \
                    self._ciou_giou(group)
        if self.per_class:
            classes = _group_by(records, 'class_name', order=self._class_order())
            self._log_class_table(classes)
            for class_name, group in classes.items():
                metrics[f'cIoU/class/{class_name}'] = self._ciou_giou(group)[0]
        return metrics

    @staticmethod
    def _ciou_giou(records: Sequence[MaskRecord]) -> Tuple[float, float]:
        """cIoU and gIoU of a group of masks, in percent, rounded to 2 decimals.

        An empty union adds nothing to cIoU and counts 1.0 in gIoU (LISA); an empty group
        scores 0 for both, so a metric never becomes NaN.
        """
        if not records:
            return 0.0, 0.0
        intersections = np.array([r.intersection for r in records], dtype=np.float64)
        unions = np.array([r.union for r in records], dtype=np.float64)
        total_union = unions.sum()
        ciou = intersections.sum() / total_union if total_union > 0 else 0.0
        per_mask = np.divide(intersections, unions, out=np.ones_like(unions), where=unions > 0)
        return round(float(ciou) * 100, 2), round(float(per_mask.mean()) * 100, 2)

    def _class_order(self) -> Optional[List[str]]:
        """The dataset's class order, so the table reads like mmseg's; None without meta."""
        meta = self.dataset_meta or {}
        classes = meta.get('classes')
        return [str(c) for c in classes] if classes is not None else None

    def _log_class_table(self, classes: Dict[str, List[MaskRecord]]) -> None:
        """Log cIoU, gIoU and the mask count of every class seen, as a prettytable."""
        table = PrettyTable()
        table.field_names = ['Class', 'cIoU', 'gIoU', 'Masks']
        for class_name, group in classes.items():
            table.add_row([class_name, *self._ciou_giou(group), len(group)])
        print_log('per class results:', logger='current')
        print_log('\n' + table.get_string(), logger='current')


def _as_tensor(mask: Union[torch.Tensor, np.ndarray, dict]) -> torch.Tensor:
    """A mask as a tensor, from a tensor, a numpy array or a ``PixelData`` dict."""
    if isinstance(mask, dict) and 'data' in mask:
        mask = mask['data']
    if isinstance(mask, np.ndarray):
        return torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f'expected a tensor mask, got {type(mask).__name__}')
    return mask


def _group_by(records: Iterable[MaskRecord], field: str,
              order: Optional[List[str]]) -> Dict[str, List[MaskRecord]]:
    """Records grouped by a field: in ``order`` first (names absent from the records are
    skipped), then any others in order of first appearance, which is the dataset order
    after mmengine's gathering, hence the same on every run."""
    groups: Dict[str, List[MaskRecord]] = OrderedDict((name, []) for name in order or [])
    for record in records:
        groups.setdefault(getattr(record, field), []).append(record)
    return OrderedDict((name, group) for name, group in groups.items() if group)
