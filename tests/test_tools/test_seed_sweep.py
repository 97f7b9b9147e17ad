"""tools/analysis/seed_sweep.py: reading a run's final metrics and per-class table."""
import importlib.util
import json
import os.path as osp

from ..conftest import REPO

spec = importlib.util.spec_from_file_location('seed_sweep',
                                              osp.join(REPO, 'tools', 'analysis', 'seed_sweep.py'))
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)

LOG = """12/01 22:49:07 - mmengine - INFO - per class results:
12/01 22:49:07 - mmengine - INFO - 
+---------+-------+-------+
|  Class  |  IoU  |  Acc  |
+---------+-------+-------+
|   road  | 10.0  | 20.0  |
|   car   |  nan  |  nan  |
+---------+-------+-------+
12/01 22:59:07 - mmengine - INFO - per class results:
12/01 22:59:07 - mmengine - INFO - 
+---------+-------+-------+
|  Class  |  IoU  |  Acc  |
+---------+-------+-------+
|   road  | 90.5  | 95.0  |
|   car   | 41.25 | 60.0  |
+---------+-------+-------+
"""  # noqa: W291  (the log lines end with a space, as mmengine writes them)


def test_final_metrics_and_class_table(tmp_path):
    run = tmp_path / '20261201_224758'
    (run / 'vis_data').mkdir(parents=True)
    lines = [
        dict(loss=1.0, step=10),
        dict(mIoU=30.0, aAcc=70.0, step=10),
        dict(loss=0.5, step=20),
        dict(mIoU=40.5, aAcc=73.0, step=20),
        dict(loss=0.4, step=30)
    ]
    (run / 'vis_data' / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines))
    (run / '20261201_224758.log').write_text(LOG)
    assert sweep.final_metrics(str(tmp_path)) == dict(mIoU=40.5, aAcc=73.0, step=20)
    assert sweep.per_class_table(str(tmp_path)) == {'road': 90.5, 'car': 41.25}
    assert sweep.final_metrics(str(tmp_path / 'none')) is None
    assert sweep.summarise([1.0, 3.0]) == '2.00 ± 1.00  (1.00, 3.00)'


def test_a_finished_run_is_kept_and_only_at_max_iters(tmp_path):
    config = osp.join(REPO, 'configs', 'toy', 'fcn_r18-tiny_toy-city-1-30.py')
    run = tmp_path / '20261201_000000' / 'vis_data'
    run.mkdir(parents=True)
    (run / 'scalars.json').write_text(json.dumps(dict(mIoU=40.0, step=2000)) + '\n')
    assert sweep.train(config, 0, str(tmp_path), [], False, 2000).endswith('finished earlier, kept')
    assert sweep.max_iters(config, []) == 2000
    assert sweep.max_iters(config, ['train_cfg.max_iters=4']) == 4


def test_segzero_runs_report_every_validation(tmp_path):
    run = tmp_path / '20261203_000000' / 'vis_data'
    run.mkdir(parents=True)
    lines = [
        dict(loss=1.0, step=600), {
            'segzero/cIoU': 10.0,
            'segzero/parse_rate': 70.0,
            'step': 600
        }, {
            'segzero/cIoU': 12.0,
            'segzero/parse_rate': 75.0,
            'step': 700
        }
    ]
    (run / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines))
    assert sorted(sweep.all_metrics(str(tmp_path))) == [600, 700]
    assert sweep.final_metrics(str(tmp_path))['segzero/cIoU'] == 12.0
