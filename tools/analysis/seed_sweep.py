"""Train a config under several seeds and report the final validation metrics as mean ± std.

    python tools/analysis/seed_sweep.py CONFIG [CONFIG ...] --seeds 0 1 2 [--parallel 2]
        [--work-dir work_dirs/sweep] [--keys mIoU reason/cIoU ...] [--cfg-options k=v ...]
        [--per-class] [--every-val] [--out sweep.json]

Each (config, seed) trains with ``tools/train.py --cfg-options randomness.seed=SEED`` into
``<work-dir>/<config>/seed<SEED>``; a run whose work directory already holds its validation
at ``train_cfg.max_iters`` (a finished earlier sweep) is not trained again, and one that was
interrupted after a checkpoint continues with ``--resume``. Runs in parallel get one thread
each (``OMP_NUM_THREADS=1``), which on small models is also the fastest setting per run. The
final validation is the last line with a metric in the run's ``vis_data/scalars.json``;
``--per-class`` also reads the last per-class table of the run's log (mmseg's ``IoUMetric``
and mmcora's ``ReasoningIoUMetric`` both print one). ``--every-val`` reports every
validation step, not only the last (a staged run validated at each stage's end: Seg-Zero's
toy before and after GRPO).
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_KEYS = ('mIoU', 'aAcc', 'reason/cIoU', 'reason/gIoU', 'reason/cIoU/semantic',
                'reason/cIoU/attribute', 'reason/cIoU/conditional', 'segzero/cIoU', 'segzero/gIoU',
                'segzero/parse_rate', 'segzero/box_acc', 'segzero/point_acc')
# The key that marks a validation entry, per metric (CORA, Seg-Zero, mmseg's IoUMetric).
MARKERS = ('reason/cIoU', 'segzero/cIoU', 'mIoU')


def all_metrics(work_dir: str) -> Dict[int, Dict[str, float]]:
    """Step -> validation entry of a run (empty if it has none yet)."""
    from mmcora.evaluation.stage_report import val_entries
    for key in MARKERS:
        entries = val_entries(work_dir, key)
        if entries:
            return entries
    return {}


def final_metrics(work_dir: str) -> Optional[Dict[str, float]]:
    """The last validation entry of a run (None if it has none yet)."""
    entries = all_metrics(work_dir)
    return entries[max(entries)] if entries else None


def per_class_table(work_dir: str) -> Dict[str, float]:
    """Class -> first metric column of the last per-class table in the run's logs."""
    rows: Dict[str, float] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', '*.log'))):
        with open(path, encoding='utf-8') as f:
            text = f.read()
        tables = text.split('per class results:')
        if len(tables) > 1:
            rows = {}
            for match in re.finditer(r'^\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|', tables[-1], re.M):
                rows.setdefault(match.group(1), float(match.group(2)))
    return rows


def max_iters(config: str, options: List[str]) -> int:
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    if cfg.train_cfg.get('stages'):  # CORAStagedTrainLoop: the stages' sum
        return sum(int(stage['iters']) for stage in cfg.train_cfg.stages)
    return int(cfg.train_cfg.max_iters)


def train(config: str, seed: int, work_dir: str, options: List[str], threads: bool,
          iters: int) -> str:
    metrics = final_metrics(work_dir)
    if metrics is not None and metrics.get('step') == iters:
        return f'{work_dir}: finished earlier, kept'
    resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
    os.makedirs(work_dir, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS='1') if threads else dict(os.environ)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir, *resume,
        '--cfg-options', f'randomness.seed={seed}', *options
    ]
    with open(osp.join(work_dir, 'sweep_stdout.txt'), 'w', encoding='utf-8') as out:
        code = subprocess.call(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code:
        raise RuntimeError(f'{" ".join(cmd)} exited {code}; see {work_dir}/sweep_stdout.txt')
    return f'{work_dir}: trained' + (' (resumed)' if resume else '')


def summarise(values: List[float]) -> str:
    return (f'{np.mean(values):.2f} ± {np.std(values):.2f}  '
            f'({", ".join(f"{v:.2f}" for v in values)})')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--parallel', type=int, default=1)
    parser.add_argument('--work-dir', default='work_dirs/sweep')
    parser.add_argument('--keys', nargs='+', default=list(DEFAULT_KEYS))
    parser.add_argument('--per-class', action='store_true')
    parser.add_argument('--every-val', action='store_true', help='every validation step')
    parser.add_argument('--cfg-options', nargs='+', default=[])
    parser.add_argument('--out', help='write every run\'s metrics as JSON')
    args = parser.parse_args()
    runs = [(cfg, seed, osp.join(args.work_dir,
                                 osp.splitext(osp.basename(cfg))[0], f'seed{seed}'))
            for cfg in args.configs for seed in args.seeds]
    # Configs are read here, one at a time: mmengine's config loader (pkg_resources) is not
    # thread-safe.
    iters = {cfg: max_iters(cfg, args.cfg_options) for cfg in args.configs}
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for message in pool.map(
                lambda r: train(*r, args.cfg_options, args.parallel > 1, iters[r[0]]), runs):
            print(message, flush=True)
    report = {}
    for cfg in args.configs:
        name = osp.splitext(osp.basename(cfg))[0]
        metrics = [final_metrics(w) for c, _, w in runs if c == cfg]
        classes = [per_class_table(w) for c, _, w in runs if c == cfg] if args.per_class else []
        report[name] = dict(seeds=args.seeds, metrics=metrics, per_class=classes)
        print(f'\n{name} (seeds {args.seeds})')
        history = [all_metrics(w) for c, _, w in runs if c == cfg]
        steps = sorted(set.intersection(*(set(h) for h in history))) if args.every_val else []
        if steps:
            report[name]['every_val'] = {step: [h[step] for h in history] for step in steps}
        for step, entries in [(s, [h[s] for h in history]) for s in steps] or [(None, metrics)]:
            if step is not None:
                print(f' val at step {step}')
            for key in args.keys:
                if all(key in m for m in entries):
                    print(f'  {key:28s} {summarise([m[key] for m in entries])}')
        for class_name in (classes[0] if classes else {}):
            values = [c.get(class_name, float('nan')) for c in classes]
            print(f'  {class_name:28s} {summarise(values)}')
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
