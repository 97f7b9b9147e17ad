"""cIoU/gIoU of trivial predictors on a config's test set: every pixel, and no pixel.

    python tools/analysis/reasoning_baselines.py CONFIG

A reasoning segmenter must beat both by far: "all foreground" scores the mean area share of
the targets, "all background" scores 0 (cIoU) and only empty targets (gIoU).
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, METRICS

import mmcora  # noqa: F401

# Targets only: no model inputs are made.
TARGETS = [dict(type='LoadImageFromFile'), dict(type='LoadReasoningAnnotations')]


def evaluate_constant(dataset, value: bool) -> dict:
    metric = METRICS.build(dict(type='ReasoningIoUMetric', per_class=False))
    metric.dataset_meta = dataset.metainfo
    for index in range(len(dataset)):
        results = dataset[index]
        gt = torch.from_numpy(results['gt_masks'])
        metric.process({}, [
            dict(
                pred_masks=torch.full_like(gt, value, dtype=torch.bool),
                gt_masks=gt,
                queries=results['queries'],
                img_path=results['img_path'])
        ])
    return metric.compute_metrics(metric.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build({**cfg.test_dataloader.dataset, 'pipeline': TARGETS})
    for name, value in (('all foreground', True), ('all background', False)):
        scores = evaluate_constant(dataset, value)
        print(f'{name:>15}: ' + '  '.join(f'{k}={v}' for k, v in scores.items()))


if __name__ == '__main__':
    main()
