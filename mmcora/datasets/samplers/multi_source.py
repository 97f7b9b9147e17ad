"""Batches drawn from several datasets in a fixed ratio (labeled + unlabeled), mmdet-style."""
import itertools
from typing import Iterator, List, Optional, Sequence, Sized

import torch
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler


@DATA_SAMPLERS.register_module()
class MultiSourceSampler(Sampler):
    """Infinite sampler: every batch holds ``source_ratio``-proportional shares of each source.

    The dataset must be a ``ConcatDataset`` of the sources (e.g. ``[labeled, unlabeled]``).
    Each source is an independent endless stream of seeded permutations, split across ranks,
    so a small labeled set simply cycles more often than a large unlabeled one. Use it with
    ``IterBasedTrainLoop`` (the sampler has no epochs).

    Args:
        dataset (Sized): ``ConcatDataset`` of the sources.
        batch_size (int): Samples per batch on each rank (the dataloader's ``batch_size``).
        source_ratio (Sequence[float]): Relative share of each source; source ``i`` gets
            ``int(batch_size * ratio_i / sum)`` samples and source 0 the remainder.
        shuffle (bool): Permute each source (else cycle in order).
        seed (int, optional): Random seed, synchronised across ranks when None.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 source_ratio: Sequence[float],
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not isinstance(dataset, ConcatDataset):
            raise TypeError('MultiSourceSampler needs a ConcatDataset of the sources, got '
                            f'{type(dataset).__name__}')
        if len(source_ratio) != len(dataset.datasets):
            raise ValueError(f'{len(source_ratio)} ratios for {len(dataset.datasets)} sources')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.offsets = [0] + list(dataset.cumulative_sizes[:-1])
        self.sizes = [len(d) for d in dataset.datasets]
        if min(self.sizes) == 0:
            empty = [
                f'source {i} ({type(d).__name__}, ann_file {getattr(d, "ann_file", None)!r})'
                for i, (d, size) in enumerate(zip(dataset.datasets, self.sizes)) if size == 0
            ]
            raise ValueError(f'every source needs samples, got sizes {self.sizes}: '
                             f'{", ".join(empty)} is empty')
        total = sum(source_ratio)
        self.num_per_source = [int(batch_size * r / total) for r in source_ratio]
        self.num_per_source[0] = batch_size - sum(self.num_per_source[1:])
        if min(self.num_per_source) < 1:
            raise ValueError(f'batch_size {batch_size} with ratio {list(source_ratio)} leaves a '
                             'source without samples in a batch')
        self.streams = [self._stream(i) for i in range(len(self.sizes))]

    def _stream(self, source: int) -> Iterator[int]:
        """Endless indices of one source for this rank."""

        def indices() -> Iterator[int]:
            generator = torch.Generator()
            generator.manual_seed(self.seed + source)
            while True:
                order = (
                    torch.randperm(self.sizes[source], generator=generator)
                    if self.shuffle else torch.arange(self.sizes[source]))
                yield from (self.offsets[source] + int(i) for i in order)

        return itertools.islice(indices(), self.rank, None, self.world_size)

    def __iter__(self) -> Iterator[int]:
        while True:
            batch: List[int] = []
            for stream, count in zip(self.streams, self.num_per_source):
                batch.extend(itertools.islice(stream, count))
            yield from batch

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """No epochs: the streams run on."""
