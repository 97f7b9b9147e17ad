"""The toy foundation cache: where made weights live, one maker at a time, progress lines.

Toy foundation weights (:mod:`.toy_sam`, :mod:`.toy_llava`) are made on this machine once
per recipe and kept outside the repository, under ``$MMCORA_CACHE_DIR/toy-foundation``
(default ``~/.cache/mmcora/toy-foundation``, as the mmcv wheel cache of
``tools/setup_env.sh``), in a folder named by a hash of everything that determines them.
"""
import fcntl
import hashlib
import json
import os
import os.path as osp
import time
from dataclasses import fields
from typing import Callable, Dict, Optional, Sequence, Type, TypeVar

from mmengine.logging import print_log


def foundation_cache_dir() -> str:
    """Root of the toy foundation cache (``$MMCORA_CACHE_DIR`` or ``~/.cache/mmcora``)."""
    base = os.environ.get('MMCORA_CACHE_DIR') or osp.join(
        os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'), 'mmcora')
    return osp.join(base, 'toy-foundation')


def cache_folder(prefix: str, spec: Dict) -> str:
    """``<cache>/<prefix>-<first 12 hex of the sha1 of spec as sorted JSON>``."""
    key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return osp.join(foundation_cache_dir(), f'{prefix}-{key[:12]}')


R = TypeVar('R')


def build_recipe(recipe_type: Type[R], overrides: Optional[Dict]) -> R:
    """The recipe dataclass with ``overrides`` (a config's ``toy_pretrain``).

    Raises:
        ValueError: Naming the unknown keys and the recipe's fields.
    """
    names = [f.name for f in fields(recipe_type)]
    unknown = sorted(set(overrides or {}) - set(names))
    if unknown:
        raise ValueError(f'unknown toy_pretrain keys {unknown}; expected some of {names}')
    return recipe_type(**(overrides or {}))


def make_once(folder: str, done: Callable[[], bool], make: Callable[[], None]) -> None:
    """Run ``make`` unless ``done()``; runs started together (seed sweeps, several ranks)
    wait on a file lock in ``folder`` for one of them to make it."""
    if done():
        return
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done():
            make()


class Progress:
    """One log line every ``every`` steps: the stage, the step, named statistics, elapsed
    and remaining time.

    Args:
        name (str): What is being made (``'toy SAM pretraining'``).
        keys (Sequence[str]): Names of the statistics to print, in order.
        every (int): Steps between lines (the last step always prints).
    """

    def __init__(self, name: str, keys: Sequence[str], every: int = 100) -> None:
        self.name, self.keys, self.every = name, tuple(keys), every
        self.start, self.first, self.stage = time.time(), None, None

    def __call__(self, done: int, total: int, stats: Dict[str, float], stage: str = '') -> None:
        if stage != self.stage:  # each stage times its own steps
            self.stage, self.first, self.start = stage, done - 1, time.time()
        if done % self.every and done != total:
            return
        elapsed = time.time() - self.start
        rate = elapsed / max(1, done - self.first)
        values = ' '.join(f'{k.replace("_", " ")} {stats[k]:.3f}' for k in self.keys if k in stats)
        label = f'{self.name} {stage} ' if stage else f'{self.name} '
        print_log(
            f'{label}[{done}/{total}] {values}, {elapsed:.0f} s, about '
            f'{rate * (total - done):.0f} s left',
            logger='current')
