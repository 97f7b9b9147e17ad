"""CORA's three training stages in one run (§3.3), switched by one loop.

Stage 1 trains on semantic and attribute instructions, stage 2 on conditional instructions
with the anchor encoders, stage 3 adds pseudo-labeled images. Each stage has its own
dataloader config (that is the whole difference in data) and the model is told when a stage
starts (``enter_stage``: stage 3 takes the consistency snapshot there). A stage of length 0
is skipped (the ablation without conditional instructions).
"""
import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader

STAGE_KEYS = {'name', 'iters', 'dataloader'}
DATASET_WRAPPERS = ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset')


def resolve_refs(config, root, where: str = 'train_cfg.stages'):
    """Replace references to top-level config entries inside a dataloader config.

    A reference is a string naming a top-level key, where a dataloader or a dataset is
    expected (a stage's ``dataloader``, a ``dataset``, an element of ``datasets``), or a
    dict ``dict(ref='key', **overrides)``: a copy of the entry updated with the overrides.
    Named entries merge across config inheritance like every top-level dict, so a partition
    config changes a dataset once (``labeled_reasoning = dict(ann_file=...)``) for every
    stage that uses it.

    Raises:
        KeyError: A reference to a key the config does not have, naming where it was.
    """

    def lookup(name, at):
        if name not in root:
            raise KeyError(f'{at}: {name!r} names no top-level entry of the config')
        return copy.deepcopy(root[name])

    def resolve(node, at):
        if isinstance(node, str):
            return resolve(lookup(node, at), f'{at} -> {node}')
        if isinstance(node, dict) and 'ref' in node:
            base = lookup(node['ref'], at)
            base.update({k: v for k, v in node.items() if k != 'ref'})
            return resolve(base, f'{at} -> {node["ref"]}')
        if isinstance(node, dict):
            node = copy.copy(node)
            # a dataloader (no type) or a dataset wrapper holds datasets; other datasets may
            # have a plain 'dataset' argument (SemiReasoningDataset's layout name)
            if 'dataset' in node and node.get('type') in (None, ) + DATASET_WRAPPERS:
                node['dataset'] = resolve(node['dataset'], f'{at}.dataset')
            if isinstance(node.get('datasets'), (list, tuple)):
                node['datasets'] = [
                    resolve(d, f'{at}.datasets[{i}]') for i, d in enumerate(node['datasets'])
                ]
        return node

    return resolve(config, where)


@LOOPS.register_module()
class CORAStagedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` over consecutive stages, each with its own data.

    ``--resume`` from an iteration inside a stage rebuilds that stage's dataloader, advances
    it by the iterations already done in the stage (as ``IterBasedTrainLoop`` advances its
    one loader) and tells the model which stage it is in; the model's stage state (the
    snapshot, the token bank) comes back with the checkpoint.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The config's ``train_dataloader``: the data of every stage
            that names none.
        stages (Sequence[dict]):
            ``dict(name=..., iters=..., dataloader=None or a dataloader config)`` in order;
            dataloaders and datasets may reference top-level config entries
            (:func:`resolve_refs`). Names ``'semantic'``, ``'conditional'`` and ``'unlabeled'`` are
            CORA's; the model reacts to ``'unlabeled'``.
        max_iters (int, optional): If given, must equal the sum of the stages' ``iters`` (schedulers
            in the config usually need the total as a variable).
        val_begin (int): As ``IterBasedTrainLoop``.
        val_interval (int): As ``IterBasedTrainLoop``.
        dynamic_intervals (list[tuple[int, int]], optional): As ``IterBasedTrainLoop``.
        val_at_stage_ends (bool): Also validate at the last iteration of every stage, so that each
            stage's result is logged whatever the interval (``tools/cora_pipeline.py``'s
            table per stage reads them).
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 stages: Sequence[dict],
                 max_iters: Optional[int] = None,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
                 val_at_stage_ends: bool = True) -> None:
        self.stages = [self._check_stage(i, s) for i, s in enumerate(stages)]
        root = getattr(runner, 'cfg', None) or {}
        for index, stage in enumerate(self.stages):
            if stage['dataloader'] is not None:
                stage['dataloader'] = resolve_refs(stage['dataloader'], root,
                                                   f'train_cfg.stages[{index}].dataloader')
        if isinstance(dataloader, dict):
            dataloader = resolve_refs(dataloader, root, 'train_dataloader')
        # what a later stage without its own data rebuilds
        self._train_dataloader_cfg = dataloader if isinstance(dataloader, dict) else \
            resolve_refs(root.get('train_dataloader'), root, 'train_dataloader')
        total = sum(s['iters'] for s in self.stages)
        if not total:
            raise ValueError('train_cfg.stages: every stage has 0 iterations')
        if max_iters is not None and max_iters != total:
            raise ValueError(f'train_cfg.max_iters is {max_iters} but the stages sum to {total} '
                             f'({[(s["name"], s["iters"]) for s in self.stages]})')
        super().__init__(runner, dataloader, total, val_begin, val_interval, dynamic_intervals)
        self._default_iterator = self.dataloader_iterator
        self.stage_index = -1
        self.val_at_stage_ends = val_at_stage_ends

    @staticmethod
    def _check_stage(index: int, stage: dict) -> dict:
        unknown = set(stage) - STAGE_KEYS
        if unknown or 'name' not in stage or 'iters' not in stage:
            raise ValueError(f'train_cfg.stages[{index}]: needs name and iters (and optionally '
                             f'dataloader), got keys {sorted(stage)}')
        if int(stage['iters']) != stage['iters'] or stage['iters'] < 0:
            raise ValueError(f'train_cfg.stages[{index}] ({stage["name"]}): iters must be a '
                             f'non-negative integer, got {stage["iters"]!r}')
        return dict(
            name=stage['name'], iters=int(stage['iters']), dataloader=stage.get('dataloader'))

    @property
    def boundaries(self) -> List[Tuple[int, int]]:
        """``(first, end)`` iteration of each stage."""
        out, start = [], 0
        for stage in self.stages:
            out.append((start, start + stage['iters']))
            start += stage['iters']
        return out

    def stage_at(self, iteration: int) -> int:
        """Index of the stage that trains iteration ``iteration`` (0-based)."""
        for index, (first, end) in enumerate(self.boundaries):
            if first <= iteration < end:
                return index
        return len(self.stages) - 1

    @property
    def stage_name(self) -> str:
        return self.stages[self.stage_index]['name'] if self.stage_index >= 0 else ''

    def _enter(self, index: int) -> None:
        """Switch data to stage ``index``, skip what it already trained, tell the model."""
        stage, (first, end) = self.stages[index], self.boundaries[index]
        if stage['dataloader'] is None and self.stage_index < 0:
            # the runner's train_dataloader, built by the loop and not iterated yet
            self.dataloader_iterator = self._default_iterator
        else:
            # A fresh loader per stage: its sampler and worker seeds start as they would in a
            # resumed run, so resuming inside the stage repeats the same batches.
            config = copy.deepcopy(stage['dataloader'] or self._train_dataloader_cfg)
            del self.dataloader_iterator  # releases the previous stage's workers
            self.dataloader_iterator = _InfiniteDataloaderIterator(
                self.runner.build_dataloader(
                    config,
                    seed=self.runner.seed,
                    diff_rank_seed=self.runner._randomness_cfg.get('diff_rank_seed', False)))
        done = self._iter - first
        print_log(
            f'stage {index + 1}/{len(self.stages)} "{stage["name"]}": iterations '
            f'{first + 1}-{end}' + (f', advancing its data {done} steps (resume)' if done else ''),
            logger='current')
        for _ in range(done):
            next(self.dataloader_iterator)
        self.stage_index = index
        model = self.runner.model.module if is_model_wrapper(self.runner.model) \
            else self.runner.model
        if hasattr(model, 'enter_stage'):
            model.enter_stage(stage['name'])

    def _at_stage_end(self) -> bool:
        return self.val_at_stage_ends and any(end == self._iter
                                              for first, end in self.boundaries if end > first)

    def run(self):
        """Train every stage in turn (hooks and validation as ``IterBasedTrainLoop``)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter >= self._max_iters:
            print_log('training already finished', logger='current', level=logging.WARNING)
        while self._iter < self._max_iters and not self.stop_training:
            index = self.stage_at(self._iter)
            if index != self.stage_index:
                self._enter(index)
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters
                         or self._at_stage_end())):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
