"""The shipped Cityscapes partitions and the toy partition logic."""
import math
import os.path as osp

import pytest

from mmcora.datasets import (PARTITIONS, install_split_lists, packaged_split_file, partition_names,
                             read_name_list)

# (labeled, unlabeled) per UniMatch partition of the 2975 Cityscapes training images.
CITYSCAPES_COUNTS = {
    '1_30': (100, 2875),
    '1_16': (186, 2789),
    '1_8': (372, 2603),
    '1_4': (744, 2231),
    '1_2': (1488, 1487)
}


@pytest.mark.parametrize('split', sorted(CITYSCAPES_COUNTS))
def test_cityscapes_partition_counts_and_disjoint(split):
    labeled = read_name_list(packaged_split_file('cityscapes', split, 'labeled'))
    unlabeled = read_name_list(packaged_split_file('cityscapes', split, 'unlabeled'))
    assert (len(labeled), len(unlabeled)) == CITYSCAPES_COUNTS[split]
    assert len(set(labeled)) == len(labeled) and len(set(unlabeled)) == len(unlabeled)
    assert not set(labeled) & set(unlabeled)
    assert len(set(labeled) | set(unlabeled)) == 2975


def test_cityscapes_val_and_name_form():
    val = read_name_list(packaged_split_file('cityscapes', 'val'))
    assert len(val) == 500 == len(set(val))
    train = read_name_list(packaged_split_file('cityscapes', '1_30', 'labeled'))
    for name in val + train:  # '<city>/<city>_<seq>_<frame>', what CityscapesDataset appends to
        city, stem = name.split('/')
        assert stem.startswith(city + '_') and len(stem.split('_')[-1]) == 6
    assert {n.split('/')[0] for n in val} == {'frankfurt', 'lindau', 'munster'}


def test_cityscapes_nesting_as_documented():

    def labeled(split):
        return set(read_name_list(packaged_split_file('cityscapes', split, 'labeled')))

    assert labeled('1_16') < labeled('1_8') < labeled('1_4') < labeled('1_2')
    assert not labeled('1_30') <= labeled('1_16')


def test_packaged_split_file_errors_name_the_list():
    with pytest.raises(FileNotFoundError, match='cityscapes/1_3/labeled.txt'):
        packaged_split_file('cityscapes', '1_3')


def test_install_split_lists(tmp_path):
    out = install_split_lists('cityscapes', str(tmp_path))
    assert osp.isfile(osp.join(out, '1_30', 'unlabeled.txt'))
    assert len(read_name_list(osp.join(out, 'val.txt'))) == 500


def test_partition_names_nested_disjoint_and_seeded():
    names = [f'city/city_{i:06d}_000019' for i in range(95)]
    parts = partition_names(names, seed=3)
    assert set(parts) == set(PARTITIONS)
    previous = set()
    for split in ('1_30', '1_16', '1_8', '1_4'):
        labeled, unlabeled = parts[split]
        assert len(labeled) == math.ceil(95 * PARTITIONS[split])
        assert not set(labeled) & set(unlabeled) and len(labeled) + len(unlabeled) == 95
        assert previous <= set(labeled)
        previous = set(labeled)
    assert partition_names(names, seed=3) == parts
    assert partition_names(names, seed=4) != parts


def test_split_installer_refuses_a_missing_root_and_names_missing_train_ids(tmp_path):
    """tools/dataset_converters/cityscapes_splits.py: a mistyped root is an error (it used to
    make the directory); images without train-id maps get the converter that makes them."""
    import subprocess
    import sys

    import cv2
    import numpy as np

    from ..conftest import REPO, run_tool
    tool = [sys.executable, 'tools/dataset_converters/cityscapes_splits.py']
    result = subprocess.run(
        tool + [str(tmp_path / 'cityscpaes')], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and f'{tmp_path / "cityscpaes"} is not a directory' in (
        result.stderr)
    assert not (tmp_path / 'cityscpaes').exists()
    root = tmp_path / 'cityscapes'
    name = read_name_list(packaged_split_file('cityscapes', '1_30'))[0]
    image = root / 'leftImg8bit' / 'train' / f'{name}_leftImg8bit.png'
    image.parent.mkdir(parents=True)
    cv2.imwrite(str(image), np.zeros((8, 16, 3), np.uint8))
    log = run_tool(tool + [str(root)]).stdout
    assert f'partition lists written to {root / "splits"}' in log
    assert (f'1 train images have no *_gtFine_labelTrainIds.png under {root}/gtFine/train '
            f'(first: {name})') in log
    assert f'CITYSCAPES_DATASET={root} csCreateTrainIdLabelImgs' in log
    assert 'of 500 val images' in log
