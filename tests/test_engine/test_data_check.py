"""DataFilesCheckHook: a missing listed file stops training before the first iteration."""
import glob
import os
import os.path as osp
import shutil

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmcora  # noqa: F401
from ..conftest import REPO

CONFIG = osp.join(REPO, 'configs', 'unimatch', 'unimatch_fcn-r18-tiny_toy-city-1-30.py')


def _runner(root, spec, work_dir):
    cfg = Config.fromfile(CONFIG)
    for dataset in cfg.train_dataloader.dataset.datasets + [cfg.val_dataloader.dataset]:
        dataset.update(data_root=root, toy_city=spec)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_iters = 1
    cfg.work_dir = str(work_dir)
    return Runner.from_cfg(cfg)


def test_missing_listed_files_stop_training_before_it_starts(toy_city_root, toy_city_spec,
                                                             tmp_path):
    root = str(tmp_path / 'toy_city')
    shutil.copytree(toy_city_root, root)
    unlabeled = open(osp.join(root, 'splits', '1_30', 'unlabeled.txt')).read().split()
    os.remove(osp.join(root, 'leftImg8bit', 'train', unlabeled[4] + '_leftImg8bit.png'))
    labeled = open(osp.join(root, 'splits', '1_30', 'labeled.txt')).read().split()
    os.remove(osp.join(root, 'gtFine', 'train', labeled[0] + '_gtFine_labelTrainIds.png'))
    runner = _runner(root, toy_city_spec, tmp_path / 'work')
    with pytest.raises(FileNotFoundError) as error:
        runner.train()
    message = str(error.value)
    assert (f'splits/1_30/labeled.txt line 1 -> {root}/gtFine/train/{labeled[0]}'
            f'_gtFine_labelTrainIds.png' in message)
    assert (f'splits/1_30/unlabeled.txt line 5 -> {root}/leftImg8bit/train/{unlabeled[4]}'
            f'_leftImg8bit.png' in message)
    assert runner.iter == 0 and not glob.glob(str(tmp_path / 'work' / '*.pth'))


def test_unlabeled_images_need_no_label_maps(toy_city_root, toy_city_spec, tmp_path):
    from mmcora.engine.hooks import leaf_datasets, missing_files
    root = str(tmp_path / 'toy_city')
    shutil.copytree(toy_city_root, root)
    unlabeled = open(osp.join(root, 'splits', '1_30', 'unlabeled.txt')).read().split()
    os.remove(osp.join(root, 'gtFine', 'train', unlabeled[0] + '_gtFine_labelTrainIds.png'))
    runner = _runner(root, toy_city_spec, tmp_path / 'work')
    datasets = list(leaf_datasets(runner.train_dataloader.dataset))
    assert len(datasets) == 2 and [missing_files(d) for d in datasets] == [[], []]


def test_wrong_data_root_names_the_list(tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'unimatch', 'unimatch_deeplabv3plus-r101_cityscapes-1-8.py'))
    labeled = cfg.train_dataloader.dataset.datasets[0]
    labeled.data_root = str(tmp_path / 'nowhere')
    # mmseg's own check, at build time: an AssertionError naming the list
    with pytest.raises(AssertionError, match=r'nowhere/splits/1_8/labeled\.txt'):
        DATASETS.build(labeled)


def test_reasoning_label_maps_are_checked(toy_city_root, tmp_path):
    # ReasoningSegDataset checks its files when it reads the instruction file; a label map
    # removed afterwards (before training starts) is the hook's to find.
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from mmcora.engine.hooks import missing_files
    init_default_scope('mmseg')
    root = str(tmp_path / 'toy_city')
    shutil.copytree(toy_city_root, root)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'cora', 'toy-city_1-30_tiny.py'))
    assert dict(type='DataFilesCheckHook') in cfg.custom_hooks
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=root, toy_city=None))
    assert missing_files(dataset) == []
    gone = dataset.get_data_info(1)['seg_map_path']
    os.remove(gone)
    assert missing_files(dataset) == [(1, gone)]


def test_stage_3_pseudo_labels_are_checked_before_the_first_iteration(toy_city_root, toy_city_spec,
                                                                      tmp_path):
    """A missing pseudo-label of a later stage stops a staged run before iteration 1 (not
    when stage 3 starts), naming the list line and the file."""
    from ..test_tools.test_cora_stages import stage_config
    path = stage_config(tmp_path, toy_city_root, toy_city_spec)
    unlabeled = open(osp.join(toy_city_root, 'splits', '1_4', 'unlabeled.txt')).read().split()
    os.remove(tmp_path / 'pseudo' / f'{unlabeled[2]}_pseudo.png')
    cfg = Config.fromfile(path)
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
            FileNotFoundError,
            match=rf'splits/1_4/unlabeled.txt line 3.*'
            rf'{unlabeled[2]}_pseudo.png'):
        runner.train()
    assert runner.iter == 0 and not glob.glob(str(tmp_path / 'work' / '*.pth'))
