"""CORAStagedTrainLoop's stage table and resolve_refs (named dataloaders and datasets)."""
from types import SimpleNamespace

import pytest
from torch.utils.data import DataLoader

from mmcora.engine import CORAStagedTrainLoop
from mmcora.engine.stages import resolve_refs

ROOT = dict(
    labeled=dict(type='ReasoningSegDataset', ann_file='a.jsonl', query_types=None),
    pseudo=dict(type='SemiReasoningDataset', dataset='cityscapes', pseudo_dir='p'),
    loader=dict(batch_size=2, dataset=dict(ref='labeled', query_types=('conditional', ))),
    mixed=dict(batch_size=4, dataset=dict(type='ConcatDataset', datasets=['labeled', 'pseudo'])))


def test_refs_resolve_with_overrides_and_inside_wrappers():
    loader = resolve_refs('loader', ROOT)
    assert loader['dataset'] == dict(
        type='ReasoningSegDataset', ann_file='a.jsonl', query_types=('conditional', ))
    mixed = resolve_refs(dict(ref='mixed', batch_size=8), ROOT)
    assert mixed['batch_size'] == 8
    assert [d['type'] for d in mixed['dataset']['datasets']
            ] == ['ReasoningSegDataset', 'SemiReasoningDataset']
    # a dataset's own 'dataset' argument is a value, not a reference
    assert mixed['dataset']['datasets'][1]['dataset'] == 'cityscapes'
    assert ROOT['loader']['dataset'] == dict(ref='labeled', query_types=('conditional', ))


def test_unknown_ref_names_where():
    with pytest.raises(
            KeyError,
            match=r"stages\[2\].dataloader -> mixed.dataset.datasets\[1\]: "
            "'nowhere' names no top-level entry"):
        resolve_refs(
            'mixed',
            dict(
                ROOT,
                mixed=dict(dataset=dict(type='ConcatDataset', datasets=['labeled', 'nowhere']))),
            'stages[2].dataloader')


def _loop(stages, **kwargs):
    runner = SimpleNamespace(visualizer=SimpleNamespace(dataset_meta=None), cfg=ROOT)
    return CORAStagedTrainLoop(runner, DataLoader(list(range(4))), stages, **kwargs)


def test_stage_table_is_checked():
    loop = _loop([dict(name='a', iters=2),
                  dict(name='b', iters=0),
                  dict(name='c', iters=3)],
                 max_iters=5)
    assert loop.boundaries == [(0, 2), (2, 2), (2, 5)]
    assert [loop.stage_at(i) for i in range(5)] == [0, 0, 2, 2, 2]
    with pytest.raises(ValueError, match='max_iters is 6 but the stages sum to 5'):
        _loop([dict(name='a', iters=2), dict(name='c', iters=3)], max_iters=6)
    with pytest.raises(ValueError, match=r'stages\[0\]: needs name and iters'):
        _loop([dict(name='a', iter=2)])
    with pytest.raises(ValueError, match='every stage has 0 iterations'):
        _loop([dict(name='a', iters=0)])
    with pytest.raises(ValueError, match=r'stages\[1\] \(b\): iters must be a non-negative'):
        _loop([dict(name='a', iters=1), dict(name='b', iters=-1)])


def test_validation_runs_at_every_stage_end():
    """Besides the interval, the loop validates at the last iteration of each non-empty
    stage (the per-stage results the pipeline's table reads); off with val_at_stage_ends."""

    def vals(**kwargs):
        loop = _loop([dict(name='a', iters=3),
                      dict(name='b', iters=0),
                      dict(name='c', iters=4)],
                     val_interval=5,
                     **kwargs)
        done = []
        loop.runner.val_loop = SimpleNamespace(run=lambda: done.append(loop.iter))
        loop.runner.call_hook = lambda *args, **kw: None
        loop.runner.model = SimpleNamespace(train=lambda: None)
        loop.runner.build_dataloader = lambda config, **kw: DataLoader(list(range(4)))
        loop._train_dataloader_cfg = dict(batch_size=1)
        loop.runner.seed, loop.runner._randomness_cfg = 0, {}

        def run_iter(idx, data_batch=None):
            loop._iter += 1

        loop.run_iter = run_iter
        loop.run()
        return done

    assert vals() == [3, 5, 7]
    assert vals(val_at_stage_ends=False) == [5, 7]


def test_every_staged_config_resolves_with_one_partition_throughout():
    """Each 3-stage config's stages resolve, and labeled instructions, split lists and the
    pseudo-label directory all name the same partition."""
    import glob
    import os.path as osp
    import re

    from mmengine.config import Config

    from ..conftest import REPO
    configs = [
        c for c in sorted(glob.glob(osp.join(REPO, 'configs', 'cora', '*.py')))
        if Config.fromfile(c).get('train_cfg', {}).get('type') == 'CORAStagedTrainLoop'
    ]
    assert len(configs) >= 14
    for path in configs:
        cfg = Config.fromfile(path)
        loaders = [resolve_refs(cfg.train_dataloader, cfg)] + [
            resolve_refs(s['dataloader'], cfg) for s in cfg.train_cfg.stages if s.get('dataloader')
        ]
        found = set()
        for loader in loaders:
            dataset = loader['dataset']
            for d in dataset.get('datasets', [dataset]):
                # yapf: disable  (yapf breaks d.get(...) calls between their arguments)
                for text in (d['ann_file'], d.get('pseudo_dir', ''),
                             d.get('build_instructions', {}).get('ann_file', '')):
                    # '1_30' between separators (PanNuke's 'fold1_1_30_labeled' too)
                    found |= set(re.findall(r'(?<![^/_])1_\d+(?![^/_.])|train', text))
                # yapf: enable
        assert len(found) == 1, (osp.basename(path), found)
