"""tools/cora_pipeline.py end to end at test size: teacher, export, quality, CORA's three
stages, test with overlays, the per-stage table; a rerun skips every finished step."""
import glob
import json
import os
import os.path as osp
import sys

from mmengine.config import Config

from ..conftest import REPO, run_tool
from .test_cora_stages import stage_config

TEACHER = osp.join(REPO, 'configs', 'unimatch', 'unimatch_fcn-r18-tiny_toy-city-1-30.py')


def teacher_config(tmp_path, root, spec) -> str:
    """The toy UniMatch teacher on the session's toy city (1/4 partition), 2 iterations."""
    cfg = Config.fromfile(TEACHER)
    labeled, unlabeled = cfg.train_dataloader.dataset.datasets
    labeled.ann_file, unlabeled.ann_file = 'splits/1_4/labeled.txt', 'splits/1_4/unlabeled.txt'
    for dataset in cfg.train_dataloader.dataset.datasets + [cfg.val_dataloader.dataset]:
        dataset.update(data_root=root, toy_city=spec)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.update(interval=2, save_best=None)
    path = str(tmp_path / 'teacher.py')
    cfg.dump(path)
    return path


def test_pipeline_runs_every_step_and_reports_each_stage(tmp_path, toy_city_root, toy_city_spec):
    cora = stage_config(tmp_path, toy_city_root, toy_city_spec, stages=(2, 2, 2))
    teacher = teacher_config(tmp_path, toy_city_root, toy_city_spec)
    work = str(tmp_path / 'pipeline')
    command = [
        sys.executable, 'tools/cora_pipeline.py', '--config', cora, '--teacher', teacher,
        '--work-dir', work
    ]
    out = run_tool(command, env=dict(OMP_NUM_THREADS='1'), timeout=900).stdout
    steps = ['data', 'teacher', 'pseudo', 'pseudo_quality', 'cora', 'evaluate']
    for step in steps:  # no foundation steps: the test configs use random tiny weights
        assert f'[pipeline] {step}: done in' in out, out[-3000:]
        assert osp.isfile(osp.join(work, 'steps', f'{step}.json'))
    assert '[pipeline] sam' not in out
    assert '[cora] ' in out and 'stage 3/3 "unlabeled"' in out  # progress streamed
    unlabeled = open(osp.join(toy_city_root, 'splits/1_4/unlabeled.txt')).read().split()
    assert len(glob.glob(osp.join(work, 'pseudo', '**', '*_pseudo.png'),
                         recursive=True)) == len(unlabeled)
    results = open(osp.join(work, 'results.md')).read()
    assert results in out
    rows = {
        line.split('|')[1].strip(): line
        for line in results.splitlines()
        if line.startswith('| after stage') or line.startswith('| final')
    }
    assert list(rows) == [
        'after stage 1 semantic (iteration 2)', 'after stage 2 conditional (iteration 4)',
        'after stage 3 unlabeled (iteration 6)', 'final checkpoint, tools/test.py'
    ]
    assert all('n/a' not in line.split('|')[2] for line in rows.values())
    # the test of the final checkpoint repeats the validation at the last stage's end
    cells = [line.split('|')[2:7] for line in rows.values()]
    assert cells[2] == cells[3]
    metrics = json.load(
        open(json.load(open(osp.join(work, 'steps', 'evaluate.json')))['outputs']['metrics']))
    assert 'reason/cIoU/conditional' in metrics
    assert len(os.listdir(osp.join(work, 'overlays'))) > 0
    # a rerun does nothing again and prints the same table
    again = run_tool(command, env=dict(OMP_NUM_THREADS='1')).stdout
    assert all(f'[pipeline] {s}: done on' in again for s in steps)
    assert rows['final checkpoint, tools/test.py'] in again
