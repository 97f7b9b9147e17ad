"""The resumable step runner (mmcora.apis.pipeline) and the per-stage report."""
import json
import os
import os.path as osp
import sys
import time

import pytest

from mmcora.apis.pipeline import Step, StepFailed, read_marker, run_steps, timing_table
from mmcora.evaluation.stage_report import metrics_table, stage_ends, stage_rows, val_entries


def append(path, text, sleep=0.0, fail=False):
    """A command that appends ``text`` to ``path`` (counting runs), optionally failing."""
    code = (f'import time,sys; time.sleep({sleep}); open({path!r}, "a").write({text!r}); '
            f'print("Iter(train) [1/1] {text}"); print("noise"); sys.exit({int(fail)})')
    return [sys.executable, '-c', code]


def test_steps_run_in_dependency_order_and_skip_when_done(tmp_path, capsys):
    runs = tmp_path / 'runs.txt'
    steps = [
        Step('a', append(str(runs), 'a')),
        Step('b', append(str(runs), 'b'), needs=['a']),
        Step('c', append(str(runs), 'c'), needs=['a', 'b'], outputs=lambda: dict(path='x'))
    ]
    markers = run_steps(steps, str(tmp_path / 'w'), jobs=2)
    assert runs.read_text() == 'abc'
    assert markers['c']['outputs'] == dict(path='x') and not markers['c']['skipped']
    out = capsys.readouterr().out
    assert '[a] Iter(train) [1/1] a' in out and 'noise' not in out  # progress lines only
    assert 'noise' in (tmp_path / 'w' / 'logs' / 'a.log').read_text()  # the log has all
    # a rerun skips every finished step; a deleted marker redoes its step alone
    os.remove(tmp_path / 'w' / 'steps' / 'b.json')
    markers = run_steps(steps, str(tmp_path / 'w'), jobs=2)
    assert runs.read_text() == 'abcb'
    assert markers['a']['skipped'] and not markers['b']['skipped']
    assert '| b |' in timing_table(markers, steps)


def test_independent_steps_run_in_parallel(tmp_path):
    steps = [Step(n, append(str(tmp_path / f'{n}.txt'), n, sleep=1.5)) for n in 'xy']
    start = time.perf_counter()
    run_steps(steps, str(tmp_path / 'w'), jobs=2)
    assert time.perf_counter() - start < 2.9  # one after the other takes >= 3 s


def test_failed_step_names_its_log_and_later_steps_wait(tmp_path, capsys):
    runs = tmp_path / 'runs.txt'
    steps = [
        Step('a', append(str(runs), 'a', fail=True)),
        Step('b', append(str(runs), 'b'), needs=['a'])
    ]
    with pytest.raises(StepFailed, match=r"step 'a' failed \(status 1\).*logs/a.log"):
        run_steps(steps, str(tmp_path / 'w'))
    assert runs.read_text() == 'a' and read_marker(str(tmp_path / 'w'), 'a') is None
    assert 'noise' in capsys.readouterr().out  # the failed log's tail is shown
    steps[0] = Step('a', append(str(runs), 'A'))  # fixed: the rerun continues
    run_steps(steps, str(tmp_path / 'w'))
    assert runs.read_text() == 'aAb'


def test_bad_graphs_are_refused(tmp_path):
    cmd = append(str(tmp_path / 'r'), 'r')
    with pytest.raises(ValueError, match="needs 'z', which is no step"):
        run_steps([Step('a', cmd, needs=['z'])], str(tmp_path))
    with pytest.raises(ValueError, match="needs 'b', listed after it"):
        run_steps([Step('a', cmd, needs=['b']), Step('b', cmd)], str(tmp_path))
    with pytest.raises(ValueError, match='duplicate step names'):
        run_steps([Step('a', cmd), Step('a', cmd)], str(tmp_path))


def write_scalars(work_dir, stamp, entries):
    folder = osp.join(work_dir, stamp, 'vis_data')
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        for entry in entries:
            f.write(json.dumps(entry) + '\n')


def test_stage_rows_read_validation_at_stage_ends(tmp_path):
    work = str(tmp_path)

    def val(step, c):
        return {
            'reason/cIoU': c,
            'reason/gIoU': c / 2,
            'reason/num_masks': 10,
            'reason/cIoU/semantic': c + 1,
            'reason/gIoU/semantic': 1.0,
            'step': step
        }

    write_scalars(work, '20261202_100000', [dict(loss=1.0, step=2), val(2, 10.0), val(5, 11.0)])
    # the resumed run's folder: its validation of step 5 replaces the first one's
    write_scalars(work, '20261202_110000', [val(5, 12.0), val(9, 20.0)])
    stages = [
        dict(name='semantic', iters=2),
        dict(name='conditional', iters=0),
        dict(name='unlabeled', iters=3),
        dict(name='more', iters=4)
    ]
    assert stage_ends(stages) == [('semantic', 2), ('unlabeled', 5), ('more', 9)]
    assert sorted(val_entries(work)) == [2, 5, 9]
    rows = stage_rows(work, stages)
    assert [metrics['reason/cIoU'] for _, metrics in rows] == [10.0, 12.0, 20.0]
    table = metrics_table(rows + [('missing', None)])
    assert '| after stage 2 unlabeled (iteration 5) | 12.00 / 6.00 | 13.00 / 1.00 | n/a | n/a |' \
        in table
    assert table.splitlines()[-1] == '| missing | n/a | n/a | n/a | n/a |'


def test_bad_scalars_line_names_file_and_line(tmp_path):
    write_scalars(str(tmp_path), 's', [dict(step=1)])
    path = tmp_path / 's' / 'vis_data' / 'scalars.json'
    path.write_text(path.read_text() + '{"step": 2, \n')
    with pytest.raises(ValueError, match=r'scalars.json:2: not valid JSON'):
        val_entries(str(tmp_path))
