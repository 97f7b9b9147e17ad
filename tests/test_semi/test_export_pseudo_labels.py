"""tools/export_pseudo_labels.py: outputs, resume after a kill, two processes."""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmcora  # noqa: F401
from ..conftest import REPO, free_port, run_tool

# the teacher of CORA's stage 3: a UniMatch checkpoint (any mmseg segmentor config works)
CONFIG = osp.join(REPO, 'configs', 'unimatch', 'unimatch_fcn-r18-tiny_toy-city-1-30.py')


def _checkpoint(tmp_path, seed=0):
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    path = str(tmp_path / f'model{seed}.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def _command(toy_city_root, checkpoint, out, ann_file='splits/1_30/unlabeled.txt'):
    return [
        sys.executable, 'tools/export_pseudo_labels.py', CONFIG, checkpoint, '--data-root',
        toy_city_root, '--ann-file', ann_file, '--out', out, '--device', 'cpu'
    ]


def test_export_resume_and_two_processes(tmp_path, toy_city_root):
    checkpoint = _checkpoint(tmp_path)
    names = open(osp.join(toy_city_root, 'splits', '1_30', 'unlabeled.txt')).read().split()
    out = str(tmp_path / 'pseudo')
    # a run killed midway
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    proc = subprocess.Popen(
        _command(toy_city_root, checkpoint, out),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(glob.glob(osp.join(out, '**', '*_conf.png'), recursive=True)) < 5:
        assert proc.poll() is None and time.time() < deadline, 'export ended before the kill'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {
        p: os.stat(p).st_mtime_ns
        for p in glob.glob(osp.join(out, '**', '*_conf.png'), recursive=True)
    }
    # the rerun skips what is done and finishes the rest
    log = run_tool(_command(toy_city_root, checkpoint, out)).stdout
    labels = glob.glob(osp.join(out, '**', '*_pseudo.png'), recursive=True)
    assert len(labels) == len(names)
    assert not glob.glob(osp.join(out, '**', '*.tmp-*'), recursive=True)  # killed run's leftovers
    for path, mtime in finished.items():
        assert os.stat(path).st_mtime_ns == mtime
    skipped = int(log.split('skipped ')[1].split()[0])
    assert skipped >= len(finished) - 1  # the one being written at the kill may be redone
    label = cv2.imread(labels[0], cv2.IMREAD_UNCHANGED)
    conf = cv2.imread(labels[0].replace('_pseudo', '_conf'), cv2.IMREAD_UNCHANGED)
    assert label.shape == conf.shape == (128, 256) and label.max() < 19
    # two processes share the work and produce the same files
    out2 = str(tmp_path / 'pseudo2')
    run_tool([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
        str(free_port())
    ] + _command(toy_city_root, checkpoint, out2)[1:] + ['--launcher', 'pytorch'])
    labels2 = sorted(glob.glob(osp.join(out2, '**', '*_pseudo.png'), recursive=True))
    assert len(labels2) == len(names)
    for path in labels2:
        twin = path.replace(out2, out)
        assert (cv2.imread(path, cv2.IMREAD_UNCHANGED) == cv2.imread(twin,
                                                                     cv2.IMREAD_UNCHANGED)).all()


def test_missing_image_fails_before_work(tmp_path, toy_city_root):
    (tmp_path / 'list.txt').write_text('aachen/nowhere_000000_000019\n')
    result = subprocess.run(
        _command(toy_city_root, _checkpoint(tmp_path), str(tmp_path / 'o'),
                 str(tmp_path / 'list.txt')),
        cwd=REPO,
        capture_output=True,
        text=True)
    assert result.returncode != 0 and 'nowhere_000000_000019_leftImg8bit.png' in result.stderr
    assert not osp.exists(tmp_path / 'o')


def test_rerun_with_another_teacher_stops_before_mixing(tmp_path, toy_city_root):
    """Finishing another teacher's export would mix two teachers' pseudo-labels."""
    names = open(osp.join(toy_city_root, 'splits', '1_30', 'unlabeled.txt')).read().split()
    (tmp_path / 'list.txt').write_text('\n'.join(names[:2]) + '\n')
    first, second, out = _checkpoint(tmp_path), _checkpoint(tmp_path, 1), str(tmp_path / 'o')
    run_tool(_command(toy_city_root, first, out, str(tmp_path / 'list.txt')))
    written = {
        p: os.stat(p).st_mtime_ns
        for p in glob.glob(osp.join(out, '**', '*.png'), recursive=True)
    }
    assert len(written) == 4
    assert 'skipped 2' in run_tool(_command(toy_city_root, first, out,
                                            str(tmp_path / 'list.txt'))).stdout
    result = subprocess.run(
        _command(toy_city_root, second, out, str(tmp_path / 'list.txt')),
        cwd=REPO,
        capture_output=True,
        text=True)
    assert result.returncode != 0
    assert f'{out} holds pseudo-labels of another teacher ({first}' in result.stderr
    assert f'not of {second}' in result.stderr
    assert {p: os.stat(p).st_mtime_ns for p in written} == written
