"""Per-class quality of exported pseudo-labels against ground truth the teacher did not see.

    python tools/analysis/pseudo_label_quality.py PSEUDO_DIR --data-root data/toy_city \
        --ann-file splits/1_30/unlabeled.txt [--conf-thresh 0.95] [--out quality.json]

Reads ``<PSEUDO_DIR>/<name>_pseudo.png`` and ``<name>_conf.png`` (tools/export_pseudo_labels.py)
and ``<data-root>/<seg-dir>/<name><seg-suffix>`` for every name of the list (void 255 ignored).
Per class: its share of the labeled pixels, the IoU of the pseudo-labels, and for the pixels
a UniMatch-style threshold keeps (confidence >= ``--conf-thresh``) the share of the class's
pixels kept *as that class* (coverage) and how many kept pixels of that label are right
(precision). A class with coverage near 0 never appears as a target in the unlabeled loss,
which then teaches the network to predict something else there.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List

import numpy as np
from mmseg.registry import DATASETS

import mmcora  # noqa: F401  registers the datasets, so --dataset-type may name mmcora's
from mmcora.datasets import read_name_list
from mmcora.instructions import load_label_map

VOID = 255


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pseudo_dir')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--ann-file', required=True, help='list relative to the data root')
    parser.add_argument('--seg-dir', default='gtFine/train', help='under the data root')
    parser.add_argument('--seg-suffix', default='_gtFine_labelTrainIds.png')
    parser.add_argument(
        '--dataset-type',
        default='CityscapesDataset',
        help='registered dataset whose METAINFO names the classes')
    parser.add_argument('--conf-thresh', type=float, default=0.95)
    parser.add_argument('--out', help='also write the figures to this JSON file')
    return parser.parse_args()


def count(names: List[str], args: argparse.Namespace, num_classes: int) -> Dict[str, np.ndarray]:
    """Pixel counts per class: ground truth, predicted, both, and the confident ones."""
    counts = {
        k: np.zeros(num_classes, np.int64)
        for k in ('gt', 'pred', 'hit', 'kept_pred', 'kept_hit')
    }
    for name in names:
        gt = load_label_map(osp.join(args.data_root, args.seg_dir, name + args.seg_suffix))
        pseudo = load_label_map(osp.join(args.pseudo_dir, name + '_pseudo.png'))
        conf = load_label_map(osp.join(args.pseudo_dir, name + '_conf.png'))
        if not gt.shape == pseudo.shape == conf.shape:
            raise SystemExit(f'error: {name}: ground truth {gt.shape}, pseudo-label '
                             f'{pseudo.shape} and confidence {conf.shape} differ in size')
        valid = gt != VOID
        gt, pseudo = gt[valid].astype(np.int64), pseudo[valid].astype(np.int64)
        kept = conf[valid] / 255.0 >= args.conf_thresh  # the export stores conf x 255
        if gt.max(initial=0) >= num_classes or pseudo.max(initial=0) >= num_classes:
            raise SystemExit(f'error: {name}: a label id >= {num_classes} classes')
        right = gt == pseudo
        for key, labels, mask in (('gt', gt, None), ('pred', pseudo, None), ('hit', gt, right),
                                  ('kept_pred', pseudo, kept), ('kept_hit', gt, kept & right)):
            counts[key] += np.bincount(
                labels if mask is None else labels[mask], minlength=num_classes)
    return counts


def summarise(counts: Dict[str, np.ndarray], classes: List[str]) -> dict:
    """Percentages per class (classes absent from the ground truth are left out) and overall."""

    def pct(num, den):
        return round(100.0 * float(num) / float(den), 2) if den else None

    per_class = {}
    for c, name in enumerate(classes):
        if counts['gt'][c] == 0:
            continue
        per_class[name] = dict(
            share=pct(counts['gt'][c], counts['gt'].sum()),
            iou=pct(counts['hit'][c], counts['gt'][c] + counts['pred'][c] - counts['hit'][c]),
            kept_coverage=pct(counts['kept_hit'][c], counts['gt'][c]),
            kept_precision=pct(counts['kept_hit'][c], counts['kept_pred'][c]))
    valid, kept, kept_right = (counts[k].sum() for k in ('gt', 'kept_pred', 'kept_hit'))
    ious = [v['iou'] for v in per_class.values()]
    return dict(
        per_class=per_class,
        pixel_accuracy=pct(counts['hit'].sum(), valid),
        miou=round(float(np.mean(ious)), 2) if ious else None,
        kept_share=pct(kept, valid),
        kept_accuracy=pct(kept_right, kept))


def main() -> None:
    args = parse_args()
    if not 0.0 <= args.conf_thresh <= 1.0:
        raise SystemExit(f'error: --conf-thresh must be in [0, 1], got {args.conf_thresh}')
    classes = list(DATASETS.get(args.dataset_type).METAINFO['classes'])
    names = read_name_list(osp.join(args.data_root, args.ann_file))
    for name in names:  # name the first missing file before reading anything
        for path in (osp.join(args.data_root, args.seg_dir, name + args.seg_suffix),
                     osp.join(args.pseudo_dir,
                              name + '_pseudo.png'), osp.join(args.pseudo_dir, name + '_conf.png')):
            if not osp.isfile(path):
                raise SystemExit(f'error: {path} (for {args.ann_file}: {name}) is missing')
    summary = summarise(count(names, args, len(classes)), classes)
    summary.update(images=len(names), conf_thresh=args.conf_thresh)
    print(f'{len(names)} images, confidence threshold {args.conf_thresh}')
    print(f'{"class":15s} {"share %":>8s} {"IoU":>6s} {"kept coverage":>14s} '
          f'{"kept precision":>15s}')
    for name, row in summary['per_class'].items():
        cells = [row[k] for k in ('share', 'iou', 'kept_coverage', 'kept_precision')]
        print(f'{name:15s} ' + ' '.join(f'{"-" if v is None else f"{v:.1f}":>{w}s}'
                                        for v, w in zip(cells, (8, 6, 14, 15))))
    print(f'pixel accuracy {summary["pixel_accuracy"]}, mIoU {summary["miou"]}; kept '
          f'{summary["kept_share"]} % of the pixels, {summary["kept_accuracy"]} % of them right')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)


if __name__ == '__main__':
    main()
