"""How right are Seg-Zero's targets drawn from pseudo-labels, and does reliability rank them?

    python tools/analysis/segzero_pseudo_targets.py data/toy_city/pseudo/fcn_1_30 \
        --data-root data/toy_city --ann-file splits/1_30/unlabeled.txt [--out targets.json]

For every image of the list and every class that ``SamplePseudoQueries`` may draw there (its
pseudo-label area at least ``--min-area-ratio`` of the image), the target Seg-Zero's GRPO
rewards against is the box and two points of the pseudo-mask (``target_from_mask``, as
``SegZeroInputs`` makes them), and its reliability is the teacher's mean confidence over that
pseudo-mask (what scales the group's advantages). Against the ground truth the teacher never
saw, each target is *right* when its box has IoU > 0.5 with the true class mask's box (the
box-IoU reward's rule) and its points lie inside the true mask. Printed: the share of right
targets overall and per reliability quartile, and the rank correlation of reliability with
the box IoU. If reliability did not rank them, weighting the groups by it would only shrink
the step size.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List

import numpy as np

from mmcora.datasets import read_name_list
from mmcora.instructions import load_label_map
from mmcora.instructions.point_targets import box_iou, mask_box, target_from_mask

VOID = 255


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pseudo_dir')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--ann-file', required=True, help='list relative to the data root')
    parser.add_argument('--seg-dir', default='gtFine/train', help='under the data root')
    parser.add_argument('--seg-suffix', default='_gtFine_labelTrainIds.png')
    parser.add_argument('--min-area-ratio', type=float, default=0.01)
    parser.add_argument('--out', help='also write the figures to this JSON file')
    return parser.parse_args()


def score_targets(names: List[str], args: argparse.Namespace) -> np.ndarray:
    """(N, 4) rows: reliability, box IoU with the true box, points inside, mask IoU."""
    rows = []
    for name in names:
        stem = osp.join(args.pseudo_dir, name)
        pseudo = load_label_map(stem + '_pseudo.png', 'pseudo-label')
        conf = load_label_map(stem + '_conf.png', 'confidence map') / 255.
        truth = load_label_map(
            osp.join(args.data_root, args.seg_dir, name + args.seg_suffix), 'ground truth')
        if not pseudo.shape == conf.shape == truth.shape:
            raise ValueError(f'{stem}: pseudo-label {pseudo.shape}, confidence {conf.shape} and '
                             f'ground truth {truth.shape} differ in size')
        for class_id in np.unique(pseudo):
            mask = pseudo == class_id
            if class_id == VOID or mask.mean() < args.min_area_ratio:
                continue
            true = truth == class_id
            target = target_from_mask(mask)
            if true.any():
                iou = box_iou(target.box, mask_box(true))  # the true box alone, no points
                inside = all(true[y, x] for x, y in target.points)
            else:
                iou, inside = 0.0, False
            rows.append(
                (conf[mask].mean(), iou, float(inside), (mask & true).sum() / (mask | true).sum()))
    return np.asarray(rows, float).reshape(-1, 4)


def summarise(rows: np.ndarray) -> Dict[str, dict]:
    """Right-target shares overall and per reliability quartile, and the rank correlation."""

    def shares(part: np.ndarray) -> dict:
        return dict(
            targets=int(len(part)),
            reliability=round(float(part[:, 0].mean()), 3),
            box_right=round(100 * float((part[:, 1] > 0.5).mean()), 2),
            points_inside=round(100 * float(part[:, 2].mean()), 2),
            mask_iou=round(float(part[:, 3].mean()), 3))

    if not len(rows):
        raise ValueError('no pseudo-label class reaches --min-area-ratio in any image')
    order = np.argsort(rows[:, 0], kind='stable')
    quarters = np.array_split(order, 4)
    ranks = [np.argsort(np.argsort(rows[:, i], kind='stable'), kind='stable') for i in (0, 1)]
    spearman = float(np.corrcoef(*ranks)[0, 1]) if len(rows) > 1 else float('nan')
    return dict(
        all=shares(rows),
        quartiles=[shares(rows[q]) for q in quarters if len(q)],
        spearman_reliability_box_iou=round(spearman, 3))


def main() -> None:
    args = parse_args()
    names = read_name_list(osp.join(args.data_root, args.ann_file))
    figures = summarise(score_targets(names, args))
    every = figures['all']
    print(f'{every["targets"]} pseudo-labeled targets of {len(names)} images: box right '
          f'(IoU > 0.5) {every["box_right"]} %, both points inside the true mask '
          f'{every["points_inside"]} %, mask IoU {every["mask_iou"]}')
    for index, part in enumerate(figures['quartiles'], 1):
        print(f'  reliability quartile {index} (mean {part["reliability"]}): {part["targets"]} '
              f'targets, box right {part["box_right"]} %, points inside '
              f'{part["points_inside"]} %, mask IoU {part["mask_iou"]}')
    print(f'rank correlation of reliability with box IoU: '
          f'{figures["spearman_reliability_box_iou"]}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(figures, f, indent=1)


if __name__ == '__main__':
    main()
