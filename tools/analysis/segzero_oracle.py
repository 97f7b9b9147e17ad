"""cIoU/gIoU a perfect Seg-Zero reasoner would reach with a config's frozen segmenter.

    python tools/analysis/segzero_oracle.py CONFIG [--limit N]

Seg-Zero's mask is the frozen segmenter's answer to the reasoner's box and points, so the
segmenter caps what any reasoner can score. For every test query this prompts the config's
segmenter with the query's own target (the box of the ground-truth mask and its two
inscribed-circle points, as ``SegZeroInputs`` computes them), and also scores the filled
target box as the mask. A reasoner's cIoU/gIoU reads against the first; box accuracy does not
depend on the segmenter.
"""
import argparse

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, METRICS, MODELS

import mmcora  # noqa: F401

# Targets and the segmenter's image only: the reasoner is not built.
STEPS = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SegZeroInputs', canvas=840)
]


def box_mask(shape, box) -> np.ndarray:
    """The filled (x1, y1, x2, y2) box, inclusive, as an (H, W) bool mask."""
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    mask[y1:y2 + 1, x1:x2 + 1] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--limit', type=int, help='only the first N test images')
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build({**cfg.test_dataloader.dataset, 'pipeline': STEPS})
    segmenter = MODELS.build(cfg.model.segmenter).eval()
    metrics = {
        name: METRICS.build(dict(type='ReasoningIoUMetric', per_class=False))
        for name in ('segmenter on target box + points', 'target box as the mask')
    }
    for metric in metrics.values():
        metric.dataset_meta = dataset.metainfo
    for index in range(min(len(dataset), args.limit or len(dataset))):
        results = dataset[index]
        gt = torch.from_numpy(results['gt_masks'])
        shape = gt.shape[1:]
        encoded = segmenter.encode([results['rgb_img']])
        prompted, boxes = [], []
        for target in results['segzero_targets']:
            if target is None:  # an empty target: the reasoner's best answer is no mask
                prompted.append(np.zeros(shape, bool))
                boxes.append(np.zeros(shape, bool))
                continue
            prompted.append(segmenter.segment(encoded, 0, target['box_ori'], target['points_ori']))
            boxes.append(box_mask(shape, target['box_ori']))
        for (name, metric), masks in zip(metrics.items(), (prompted, boxes)):
            metric.process({}, [
                dict(
                    pred_masks=torch.from_numpy(np.stack(masks)) if masks else gt.bool(),
                    gt_masks=gt,
                    queries=results['queries'],
                    img_path=results['img_path'])
            ])
    for name, metric in metrics.items():
        scores = metric.compute_metrics(metric.results)
        print(f'{name:>33}: ' + '  '.join(f'{k}={v}' for k, v in scores.items()))


if __name__ == '__main__':
    main()
