"""Validation results of a run, read back from its logs, as a table per stage and type.

mmengine's ``LocalVisBackend`` appends every logged scalar to
``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object per line, the validation
entries with ``step`` = the iteration and the metric names (``reason/cIoU``,
``reason/gIoU/conditional``, ...). A resumed run starts a new timestamp folder; entries of a
later folder replace those of the same step in an earlier one.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

#: Instruction types in the order a table shows them.
QUERY_TYPES = ('semantic', 'attribute', 'conditional')


def val_entries(work_dir: str, key: str = 'reason/cIoU') -> Dict[int, Dict[str, float]]:
    """Iteration -> the validation metrics logged there (entries that hold ``key``).

    Raises:
        ValueError: A line of a scalars file is not JSON (the file and line are named).
    """
    entries: Dict[int, Dict[str, float]] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path, encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f'{path}:{number}: not valid JSON ({error.msg})') from None
                if key in entry:
                    entries[int(entry['step'])] = entry
    return entries


def stage_ends(stages: Sequence[dict]) -> List[Tuple[str, int]]:
    """``(name, last iteration)`` of each non-empty stage of a ``CORAStagedTrainLoop``."""
    ends, total = [], 0
    for stage in stages:
        total += int(stage['iters'])
        if int(stage['iters']) > 0:
            ends.append((stage['name'], total))
    return ends


def _cell(metrics: Optional[Dict[str, float]], name: str) -> str:
    if metrics is None:
        return 'n/a'
    ciou, giou = metrics.get(f'reason/cIoU{name}'), metrics.get(f'reason/gIoU{name}')
    if ciou is None:
        return 'n/a'
    return f'{ciou:.2f} / {giou:.2f}'


def metrics_table(rows: Sequence[Tuple[str, Optional[Dict[str, float]]]],
                  types: Sequence[str] = QUERY_TYPES) -> str:
    """Markdown table: one row per ``(label, metrics)``, cIoU / gIoU overall and per type.

    ``metrics`` uses the logged names (``reason/cIoU``, ``reason/gIoU/<type>``); a missing
    entry (a validation that did not run) shows ``n/a``.
    """
    lines = ['| | all | ' + ' | '.join(types) + ' |', '|---' * (len(types) + 2) + '|']
    for label, metrics in rows:
        cells = [_cell(metrics, '')] + [_cell(metrics, f'/{t}') for t in types]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def stage_rows(work_dir: str,
               stages: Sequence[dict]) -> List[Tuple[str, Optional[Dict[str, float]]]]:
    """One ``(label, metrics)`` per stage: the validation at the stage's last iteration."""
    entries = val_entries(work_dir)
    return [(f'after stage {i} {name} (iteration {end})', entries.get(end))
            for i, (name, end) in enumerate(stage_ends(stages), 1)]


def test_metrics(json_path: str) -> Dict[str, float]:
    """The metrics ``tools/test.py`` writes to ``<work_dir>/<timestamp>/<timestamp>.json``."""
    with open(json_path, encoding='utf-8') as f:
        return json.load(f)
