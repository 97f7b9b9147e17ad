"""The PanNuke three-stage CORA configs read a converted PanNuke through every stage.

A fake PanNuke in the official formats is converted (as in test_pannuke.py), a teacher's
export is stood in for by label + confidence PNGs of the right names and sizes, and each
stage's data of the paper-size 1/4 config are built and drawn with the config's own
pipelines (SAM 1024, CLIP 336): the classes are named as cells, the folds are the ones the
config says, and a missing pseudo-label fails naming the list line.
"""
import copy
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmcora.datasets import read_name_list
from mmcora.datasets.pannuke import convert_pannuke
from mmcora.engine.stages import resolve_refs
from mmcora.instructions.vocabulary import DISPLAY_NAMES
from ..conftest import REPO
from .test_pannuke import FOLD_TISSUES, write_fold

CONFIG = osp.join(REPO, 'configs', 'cora', 'cora-semi_llava-7b-sam-vit-h_3x3k_pannuke-1-4.py')
LABELS = ('neoplastic', 'inflammatory', 'connective', 'dead', 'epithelial')


@pytest.fixture(scope='module')
def pannuke_root(tmp_path_factory):
    src = tmp_path_factory.mktemp('pannuke_src')
    for fold, tissues in FOLD_TISSUES.items():
        write_fold(src, fold, tissues)
    root = str(tmp_path_factory.mktemp('pannuke'))
    convert_pannuke(str(src), root, folds=(1, 2, 3), train_fold=1, seed=0, chunk_size=6)
    # The teacher's export: the label map as pseudo-label, confidence 0.8 everywhere.
    pseudo_dir = osp.join(root, 'pseudo', 'fold1', 'unimatch_1_4')
    for name in read_name_list(osp.join(root, 'splits/fold1/1_4/unlabeled.txt')):
        label = cv2.imread(osp.join(root, 'ann_dir', name + '.png'), cv2.IMREAD_UNCHANGED)
        os.makedirs(osp.dirname(osp.join(pseudo_dir, name)), exist_ok=True)
        cv2.imwrite(osp.join(pseudo_dir, name + '_pseudo.png'), label)
        cv2.imwrite(
            osp.join(pseudo_dir, name + '_conf.png'), np.full_like(label, 204, dtype=np.uint8))
    return root


def config_at(root):
    cfg = Config.fromfile(CONFIG)
    for entry in (cfg.labeled_reasoning, cfg.pseudo_labeled, cfg.val_dataloader.dataset,
                  cfg.test_dataloader.dataset):
        entry.data_root = root
    return cfg


def stage_dataset(cfg, stage):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    loader = (cfg.train_dataloader if stage['dataloader'] is None else stage['dataloader'])
    return DATASETS.build(copy.deepcopy(resolve_refs(loader, cfg)['dataset']))


def check_cell_names(text, label):
    assert not re.search(rf'\bthe {label}\b(?! (cells?|tissue|nuclei))', text), text


def test_every_stage_reads_pannuke_with_cell_names(pannuke_root):
    cfg = config_at(pannuke_root)
    stages = [dict(stage, dataloader=stage.get('dataloader')) for stage in cfg.train_cfg.stages]
    assert [s['name'] for s in stages] == ['semantic', 'conditional', 'unlabeled']
    labeled = read_name_list(osp.join(pannuke_root, 'splits/fold1/1_4/labeled.txt'))
    unlabeled = read_name_list(osp.join(pannuke_root, 'splits/fold1/1_4/unlabeled.txt'))
    texts = {}
    for stage in stages:
        dataset = stage_dataset(cfg, stage)
        np.random.seed(0)
        for index in range(len(dataset)):
            item = dataset[index]
            sample = item['data_samples']
            # the 256-px patch at SAM's and CLIP's sizes
            assert tuple(item['inputs']['sam'].shape) == (3, 1024, 1024)
            assert tuple(item['inputs']['clip'].shape) == (3, 336, 336)
            name = osp.relpath(sample.img_path, osp.join(pannuke_root, 'img_dir'))[:-4]
            queries = list(sample.queries) + list(sample.metainfo.get('consistency_queries', []))
            for query in queries:
                check_cell_names(query['text'], query['class_name'])
                texts.setdefault((stage['name'], query['type']), []).append(query['text'])
            if queries[0]['type'] == 'pseudo':
                assert name in unlabeled and len(queries) == cfg.num_consistency_queries
            else:
                assert name in labeled
    assert set(texts) == {('semantic', 'semantic'), ('semantic', 'attribute'),
                          ('conditional', 'conditional'), ('unlabeled', 'semantic'),
                          ('unlabeled', 'attribute'), ('unlabeled', 'conditional'),
                          ('unlabeled', 'pseudo')}
    shown = [display for display, _ in DISPLAY_NAMES['pannuke'].values()]
    for key in (('semantic', 'semantic'), ('unlabeled', 'pseudo')):
        assert any(any(s in text for s in shown) for text in texts[key]), texts[key]
    singular = [one for _, one in DISPLAY_NAMES['pannuke'].values()]
    assert all(
        sum(text.count(s) for s in singular) >= 2
        for text in texts[('conditional', 'conditional')])  # target and anchor


def test_val_and_test_are_the_other_folds(pannuke_root):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = config_at(pannuke_root)
    for loader, fold in ((cfg.val_dataloader, 2), (cfg.test_dataloader, 3)):
        dataset = DATASETS.build(copy.deepcopy(loader.dataset))
        paths = {
            osp.basename(osp.dirname(dataset.get_data_info(i)['img_path']))
            for i in range(len(dataset))
        }
        assert paths == {f'fold{fold}'} and len(dataset) == len(FOLD_TISSUES[fold])
        assert set(dataset.metainfo['classes'][1:]) == set(LABELS)


def test_missing_pseudo_label_names_the_line(pannuke_root, tmp_path):
    cfg = config_at(pannuke_root)
    names = read_name_list(osp.join(pannuke_root, 'splits/fold1/1_4/unlabeled.txt'))
    missing = osp.join(pannuke_root, 'pseudo/fold1/unimatch_1_4', names[1] + '_pseudo.png')
    os.rename(missing, str(tmp_path / 'moved.png'))
    try:
        with pytest.raises(
                FileNotFoundError,
                match=rf'1_4/unlabeled.txt line 2: pseudo-label missing: .*'
                rf'{re.escape(names[1])}_pseudo.png'):
            stage_dataset(cfg, dict(cfg.train_cfg.stages[2]))
    finally:
        os.rename(str(tmp_path / 'moved.png'), missing)
