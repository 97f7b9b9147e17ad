"""tools/train.py, tools/test.py and tools/dist_train.sh as a user runs them."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config

from ..conftest import free_port, run_tool


def _log(work_dir: str) -> str:
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    return open(logs[-1], encoding='utf-8').read()


def test_train_resume_then_test(tmp_path, small_toy_config):
    work = str(tmp_path / 'work')
    run_tool([sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work])
    assert osp.isfile(osp.join(work, 'iter_4.pth')) and 'mIoU' in _log(work)

    run_tool([
        sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work, '--resume',
        '--cfg-options', 'train_cfg.max_iters=6'
    ])
    assert 'resumed epoch: 0, iter: 4' in _log(work)
    assert osp.isfile(osp.join(work, 'iter_6.pth'))

    test_dir = str(tmp_path / 'test')
    run_tool([
        sys.executable, 'tools/test.py', small_toy_config,
        osp.join(work, 'iter_6.pth'), '--work-dir', test_dir, '--out',
        osp.join(test_dir, 'pred'), '--show-dir',
        osp.join(test_dir, 'vis')
    ])
    assert len(glob.glob(osp.join(test_dir, 'pred', '*.png'))) == 6
    assert len(glob.glob(osp.join(test_dir, 'vis', '**', '*.png'), recursive=True)) == 6
    assert 'mIoU' in _log(test_dir)


def test_cfg_options_reach_the_config(tmp_path, small_toy_config):
    work = str(tmp_path / 'work')
    run_tool([
        sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work, '--cfg-options',
        'train_cfg.max_iters=2', 'optim_wrapper.optimizer.lr=0.02'
    ])
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert not osp.isfile(osp.join(work, 'iter_4.pth'))
    dumped = Config.fromfile(osp.join(work, osp.basename(small_toy_config)))
    assert dumped.optim_wrapper.optimizer.lr == 0.02 and dumped.train_cfg.max_iters == 2


def test_amp_on_cpu_is_a_clear_error(tmp_path, small_toy_config):
    pytest.importorskip('torch')
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    with pytest.raises(AssertionError, match='--amp needs a GPU'):
        run_tool([
            sys.executable, 'tools/train.py', small_toy_config, '--amp', '--work-dir',
            str(tmp_path)
        ])


def test_dist_train_two_cpu_processes_and_resume(tmp_path, small_toy_config):
    work = str(tmp_path / 'work')
    env = {'PYTHON': sys.executable, 'PORT': str(free_port())}
    run_tool(['bash', 'tools/dist_train.sh', small_toy_config, '2', '--work-dir', work], env=env)
    log = _log(work)
    assert 'Distributed training: True' in log and "'backend': 'gloo'" in log
    assert osp.isfile(osp.join(work, 'iter_4.pth'))

    env['PORT'] = str(free_port())
    run_tool([
        'bash', 'tools/dist_train.sh', small_toy_config, '2', '--work-dir', work, '--resume',
        '--cfg-options', 'train_cfg.max_iters=6'
    ],
             env=env)
    assert 'resumed epoch: 0, iter: 4' in _log(work)
    assert osp.isfile(osp.join(work, 'iter_6.pth'))

    env['PORT'] = str(free_port())
    run_tool([
        'bash', 'tools/dist_test.sh', small_toy_config,
        osp.join(work, 'iter_6.pth'), '2', '--work-dir',
        str(tmp_path / 'test')
    ],
             env=env)
    assert 'mIoU' in _log(str(tmp_path / 'test'))


def test_resume_in_a_moved_work_dir(tmp_path, small_toy_config):
    """last_checkpoint holds an absolute path: after the work directory is moved, --resume
    takes the checkpoint of that name in the new place (it failed: the old path is gone)."""
    import shutil
    old, new = str(tmp_path / 'old'), str(tmp_path / 'moved')
    run_tool([sys.executable, 'tools/train.py', small_toy_config, '--work-dir', old])
    shutil.move(old, new)
    log = run_tool([
        sys.executable, 'tools/train.py', small_toy_config, '--work-dir', new, '--resume',
        '--cfg-options', 'train_cfg.max_iters=6'
    ]).stdout
    assert f'resuming from {osp.join(new, "iter_4.pth")}' in log
    assert 'resumed epoch: 0, iter: 4' in _log(new) and osp.isfile(osp.join(new, 'iter_6.pth'))


def test_resume_checkpoint_rules(tmp_path):
    from mmcora.engine import resume_checkpoint
    work = tmp_path / 'work'
    work.mkdir()
    assert resume_checkpoint(str(work)) is None  # nothing to resume: mmengine starts afresh
    (work / 'iter_8.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(work / 'iter_8.pth'))
    assert resume_checkpoint(str(work)) is None  # the named path exists: mmengine's own way
    (work / 'last_checkpoint').write_text('/elsewhere/run/iter_8.pth')
    assert resume_checkpoint(str(work)) == str(work / 'iter_8.pth')  # moved
    (tmp_path / 'original').mkdir()
    (tmp_path / 'original' / 'iter_8.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(tmp_path / 'original' / 'iter_8.pth'))
    assert resume_checkpoint(str(work)) == str(work / 'iter_8.pth')  # copied: its own file
    (work / 'last_checkpoint').write_text('/elsewhere/run/iter_9.pth')
    with pytest.raises(
            FileNotFoundError,
            match=r'last_checkpoint names /elsewhere/run/iter_9.pth, which does not exist, and '
            r'.*work has no iter_9.pth'):
        resume_checkpoint(str(work))
