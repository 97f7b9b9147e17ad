"""tools/analysis/pseudo_label_quality.py on a hand-made 4x4 image with known figures."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ..conftest import REPO, run_tool

GT = [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255], [2, 2, 2, 2]]
PSEUDO = [[0, 0, 1, 0], [0, 1, 1, 1], [2, 2, 0, 0], [2, 2, 2, 1]]
CONF = [[255] * 4, [100] * 4, [255] * 4, [255] * 4]  # row 1 below the threshold


def _write(tmp_path):
    root, pseudo = tmp_path / 'root', tmp_path / 'pseudo'
    for folder in (root / 'gtFine' / 'train' / 'aachen', pseudo / 'aachen'):
        os.makedirs(folder)
    name = 'aachen/aachen_000000_000019'
    cv2.imwrite(
        str(root / 'gtFine' / 'train' / f'{name}_gtFine_labelTrainIds.png'), np.array(GT, np.uint8))
    cv2.imwrite(str(pseudo / f'{name}_pseudo.png'), np.array(PSEUDO, np.uint8))
    cv2.imwrite(str(pseudo / f'{name}_conf.png'), np.array(CONF, np.uint8))
    (root / 'list.txt').write_text(name + '\n')
    return root, pseudo


def _command(root, pseudo, *extra):
    return [
        sys.executable, 'tools/analysis/pseudo_label_quality.py',
        str(pseudo), '--data-root',
        str(root), '--ann-file', 'list.txt', *extra
    ]


def test_figures_match_a_hand_count(tmp_path):
    root, pseudo = _write(tmp_path)
    out = tmp_path / 'quality.json'
    printed = run_tool(_command(root, pseudo, '--out', str(out))).stdout
    summary = json.loads(out.read_text())
    # 14 labeled pixels (2 void); road 3 of 4 right, sidewalk 3 of 4 with 2 false, building 5
    # of 6; the confident rows 0, 2, 3 hold 10 pixels, 8 of them right.
    assert summary['per_class'] == {
        'road': dict(share=28.57, iou=60.0, kept_coverage=50.0, kept_precision=66.67),
        'sidewalk': dict(share=28.57, iou=50.0, kept_coverage=25.0, kept_precision=50.0),
        'building': dict(share=42.86, iou=83.33, kept_coverage=83.33, kept_precision=100.0)
    }
    assert (summary['pixel_accuracy'], summary['miou']) == (78.57, 64.44)
    assert (summary['kept_share'], summary['kept_accuracy']) == (71.43, 80.0)
    assert 'building' in printed and 'mIoU 64.44' in printed
    # threshold 0 keeps every pixel: coverage becomes the recall
    run_tool(_command(root, pseudo, '--conf-thresh', '0', '--out', str(out)))
    assert json.loads(out.read_text())['per_class']['road']['kept_coverage'] == 75.0


@pytest.mark.parametrize('remove', ['_conf.png', '_gtFine_labelTrainIds.png'])
def test_a_missing_file_is_named(tmp_path, remove):
    root, pseudo = _write(tmp_path)
    name = 'aachen/aachen_000000_000019'
    path = (
        pseudo / f'{name}{remove}' if remove == '_conf.png' else root / 'gtFine' / 'train' /
        f'{name}{remove}')
    os.remove(path)
    result = subprocess.run(_command(root, pseudo), cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert f'{path} (for list.txt: {name}) is missing' in result.stderr
