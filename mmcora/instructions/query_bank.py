"""Per-class banks of equivalent queries for unlabeled images (CORA §3.2.1, §3.4).

For an unlabeled image and a class sampled from its pseudo-label, stage 3 trains on one query
of the class and measures output consistency over K-1 others; the queries of a class must
therefore be rephrasings of the same request. Built-in banks cover Cityscapes and PanNuke; a
JSON file ``{"class name": ["query", ...], ...}`` adds queries, or classes of the data set that
the built-in bank lacks (PanNuke's ``background``). Without a built-in bank and without known
classes, the file defines the classes.
"""
import difflib
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.class_names import CITYSCAPES_CLASSES, PANNUKE_CLASSES
from .vocabulary import DISPLAY_NAMES, VOCABULARIES, builtin_query_bank

# The class names of the data set each built-in bank serves (a file may name any of them).
DATASET_CLASSES: Dict[str, Sequence[str]] = dict(
    cityscapes=CITYSCAPES_CLASSES, pannuke=PANNUKE_CLASSES)


class QueryBank:
    """Equivalent queries per class.

    Args:
        dataset (str | None): Name of a built-in vocabulary (``'cityscapes'``, ``'pannuke'``) or
            None.
        extra_file (str, optional): JSON file whose queries are appended to (or define) classes'
            banks.
        min_queries (int): Every class must end up with at least this many distinct queries (K).
        classes (Sequence[str], optional): The data set's class names, the only ones
            ``extra_file`` may name. Default: those of ``dataset``'s data set
            (:data:`DATASET_CLASSES`); with ``dataset`` None too, any name (the file defines
            the classes).

    Raises:
        ValueError: A class has fewer than ``min_queries`` queries, the file is malformed, or it
            names a class the data set does not have (the message names the file and class,
            and the closest known class).
    """

    def __init__(self,
                 dataset: Optional[str] = 'cityscapes',
                 extra_file: Optional[str] = None,
                 min_queries: int = 7,
                 classes: Optional[Sequence[str]] = None) -> None:
        if dataset is not None and dataset not in VOCABULARIES:
            raise ValueError(f'no built-in query bank for {dataset!r}; '
                             f'choose one of {sorted(VOCABULARIES)} or None')
        if classes is None and dataset is not None:
            classes = DATASET_CLASSES.get(dataset)
        self.known_classes = None if classes is None else tuple(classes)
        self.banks: Dict[str, List[str]] = (
            builtin_query_bank(VOCABULARIES[dataset], DISPLAY_NAMES.get(dataset))
            if dataset else {})
        if extra_file is not None:
            self._extend(extra_file)
        for name, queries in self.banks.items():
            if len(queries) < min_queries:
                source = f' (from {extra_file})' if extra_file else ''
                raise ValueError(f'class {name!r} has {len(queries)} queries{source}; '
                                 f'the bank needs at least {min_queries}')

    def _extend(self, path: str) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'query bank file not found: {path}')
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f'{path}: not valid JSON (line {error.lineno}: {error.msg})') from None
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected an object mapping class names to query lists')
        known = self.known_classes
        unknown = [] if known is None else [name for name in data if name not in known]
        if unknown:
            guesses = []
            for name in unknown:
                close = difflib.get_close_matches(name, known, n=1)
                guesses.append(f'{name!r} (did you mean {close[0]!r}?)' if close else repr(name))
            raise ValueError(f'{path}: not classes of this data set: {", ".join(guesses)}; its '
                             f'classes are {", ".join(map(repr, known))}')
        for name, queries in data.items():
            if not isinstance(queries, list) or not all(
                    isinstance(q, str) and q.strip() for q in queries):
                raise ValueError(f'{path}: class {name!r} must map to a list of non-empty '
                                 'strings')
            bank = self.banks.setdefault(name, [])
            bank.extend(q for q in queries if q not in bank)

    @property
    def classes(self) -> List[str]:
        return sorted(self.banks)

    def queries(self, class_name: str) -> List[str]:
        if class_name not in self.banks:
            raise KeyError(f'no queries for class {class_name!r}; known: {self.classes}')
        return list(self.banks[class_name])

    def sample(self, class_name: str, k: int, rng: np.random.Generator) -> List[str]:
        """``k`` distinct queries of a class in random order (the first one trains)."""
        bank = self.queries(class_name)
        if k > len(bank):
            raise ValueError(f'asked for {k} queries of {class_name!r}, the bank has {len(bank)}')
        return [bank[i] for i in rng.choice(len(bank), size=k, replace=False)]

    def to_dict(self, classes: Optional[Sequence[str]] = None) -> Dict[str, List[str]]:
        return {c: self.queries(c) for c in (classes or self.classes)}
