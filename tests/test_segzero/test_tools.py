"""The toy Seg-Zero config through tools/train.py (warm start, then GRPO, resume),
tools/test.py (cIoU/gIoU, parse rate, box and point accuracy) and the segmenter oracle."""
import glob
import json
import os.path as osp
import sys

import pytest

from ..conftest import REPO, SMALL_TOY_CITY, run_tool

CONFIG = osp.join(REPO, 'configs', 'segzero', 'segzero_tiny_sft-600-grpo-100_toy-city-1-30.py')
METRICS = ('segzero/cIoU', 'segzero/gIoU', 'segzero/parse_rate', 'segzero/box_acc',
           'segzero/point_acc')


@pytest.fixture(scope='module')
def small_config(tmp_path_factory, toy_city_root, qwen_dir) -> str:
    """The toy config on the small toy city: 2 warm-start + 2 GRPO steps, short replies."""
    path = tmp_path_factory.mktemp('segzero_configs') / 'small_segzero.py'
    loader = ('dict(num_workers=0, persistent_workers=False, batch_size={bs}, '
              'dataset=dict(data_root={root!r}, toy_city={spec!r}))')
    path.write_text('\n'.join([
        f'_base_ = [{CONFIG!r}]',
        f'train_dataloader = {loader.format(bs=1, root=toy_city_root, spec=SMALL_TOY_CITY)}',
        f'val_dataloader = {loader.format(bs=1, root=toy_city_root, spec=SMALL_TOY_CITY)}',
        'test_dataloader = val_dataloader',
        'train_cfg = dict(stages=[dict(name="sft", iters=2), dict(name="grpo", iters=2)], '
        'max_iters=4, val_interval=4)',
        f'model = dict(reasoner=dict(pretrained={qwen_dir!r}, tiny=None, max_new_tokens=8), '
        'segmenter=dict(toy_pretrain=None), test_cfg=dict(max_new_tokens=8), '
        'train_cfg=dict(num_generations=2))',
        'default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))',
    ]) + '\n')
    return str(path)


def _scalars(work_dir: str) -> list:
    path = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    return [json.loads(line) for line in open(path, encoding='utf-8') if line.strip()]


def test_train_two_stages_resume_and_test(tmp_path, small_config):
    work = str(tmp_path / 'work')
    run_tool([
        sys.executable, 'tools/train.py', small_config, '--work-dir', work, '--cfg-options',
        'train_cfg.max_iters=2', 'train_cfg.stages.1.iters=0'
    ])
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    run_tool([sys.executable, 'tools/train.py', small_config, '--work-dir', work, '--resume'])
    lines = _scalars(work)
    assert any('loss_sft' in line for line in lines)
    grpo = [line for line in lines if 'loss_policy' in line]
    assert grpo and all('zero_advantage_groups' in line and 'reward' in line for line in grpo)
    assert any(all(key in line for key in METRICS) for line in lines)  # the final val

    test_dir = str(tmp_path / 'test')
    result = run_tool([
        sys.executable, 'tools/test.py', small_config,
        osp.join(work, 'iter_4.pth'), '--work-dir', test_dir
    ])
    for key in METRICS:
        assert key in result.stdout + result.stderr, key


def test_segmenter_oracle_reports_both_references(small_config):
    result = run_tool(
        [sys.executable, 'tools/analysis/segzero_oracle.py', small_config, '--limit', '2'])
    assert 'segmenter on target box + points: cIoU=' in result.stdout
    assert 'target box as the mask: cIoU=' in result.stdout


def test_filled_box_is_inclusive():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'segzero_oracle', osp.join(REPO, 'tools', 'analysis', 'segzero_oracle.py'))
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    mask = oracle.box_mask((4, 6), [1, 0, 3, 2])
    assert mask.sum() == 9 and mask[0, 1] and mask[2, 3] and not mask[3, 3]


def test_pseudo_target_quality_ranks_by_reliability(toy_city_root, tmp_path):
    """Right pseudo-labels with full confidence, upside-down ones with low confidence: the
    tool finds every confident target right, fewer of the doubtful ones, and a positive rank
    correlation; the JSON holds the same figures."""
    import cv2
    import numpy as np

    from mmcora.datasets import read_name_list
    names = read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt'))[:8]
    (tmp_path / 'list.txt').write_text('\n'.join(names) + '\n')
    out = tmp_path / 'pseudo'
    for index, name in enumerate(names):
        label = cv2.imread(
            osp.join(toy_city_root, 'gtFine/train', name + '_gtFine_labelTrainIds.png'),
            cv2.IMREAD_UNCHANGED)
        flipped = index % 2 == 1
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / f'{name}_pseudo.png'), label[::-1] if flipped else label)
        cv2.imwrite(
            str(out / f'{name}_conf.png'), np.full(label.shape, 64 if flipped else 255, np.uint8))
    log = run_tool([
        sys.executable, 'tools/analysis/segzero_pseudo_targets.py',
        str(out), '--data-root', toy_city_root, '--ann-file',
        str(tmp_path / 'list.txt'), '--out',
        str(tmp_path / 'targets.json')
    ]).stdout
    figures = json.load(open(tmp_path / 'targets.json'))
    top, bottom = figures['quartiles'][-1], figures['quartiles'][0]
    assert top['reliability'] == 1.0 and top['box_right'] == top['points_inside'] == 100.0
    assert bottom['reliability'] == pytest.approx(64 / 255, abs=1e-3)
    assert bottom['box_right'] < 100.0 and figures['spearman_reliability_box_iou'] > 0
    assert f'{figures["all"]["targets"]} pseudo-labeled targets of 8 images' in log
