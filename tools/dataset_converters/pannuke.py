"""Convert PanNuke's official folds to mmseg PNGs and write tissue-stratified partitions.

    python tools/dataset_converters/pannuke.py SRC DST [--folds 1 2 3] [--train-fold 1] [--seed 0]

SRC holds ``Fold 1``, ``Fold 2``, ``Fold 3`` as downloaded. DST receives
``img_dir/fold{k}/*.png``, ``ann_dir/fold{k}/*.png`` (0 background, 1 neoplastic,
2 inflammatory, 3 connective, 4 dead, 5 epithelial), ``types/fold{k}.txt``,
``splits/fold{k}/all.txt`` and, for the training fold,
``splits/fold{k}/{1_30,1_16,1_8,1_4}/{labeled,unlabeled}.txt``. A rerun skips the images
already converted. See docs/pannuke.md for the fold protocol.
"""
import argparse
import os.path as osp
import sys
from collections import Counter
from typing import Callable, Dict, List, Tuple

from mmcora.datasets.pannuke import (PANNUKE_CLASSES, FoldSummary, convert_pannuke,
                                     packaged_mismatch, read_tissue_types)


def progress_printer() -> Callable[[int, int, int], None]:
    """A ``convert_pannuke`` progress callback printing ``fold{k}: done/total`` on stderr."""
    done: Counter = Counter()

    def report(fold: int, total: int, count: int) -> None:
        done[fold] += count
        print(
            f'\rfold{fold}: {done[fold]}/{total}',
            end='\n' if done[fold] == total else '',
            file=sys.stderr,
            flush=True)

    return report


def print_classes(summary: FoldSummary) -> None:
    """Pixel share and number of images containing each class."""
    print(f'fold{summary.fold}: {len(summary.names)} images ({summary.written} written, '
          f'{summary.skipped} already done)')
    pixels = max(int(summary.class_pixels.sum()), 1)
    print(f'  {"class":<13}{"pixels %":>9}{"images":>8}')
    for name, count, images in zip(PANNUKE_CLASSES, summary.class_pixels, summary.class_images):
        print(f'  {name:<13}{100 * count / pixels:>9.3f}{images:>8}')


def print_tissues(tissues_by_fold: Dict[int, List[str]], train_fold: int,
                  train_tissue_of: Dict[str, str], parts: Dict[str, Tuple[List[str],
                                                                          List[str]]]) -> None:
    """Images per tissue in each fold, and labeled images per tissue in each partition."""
    counts = {fold: Counter(tissues) for fold, tissues in tissues_by_fold.items()}
    counts.setdefault(train_fold, Counter(train_tissue_of.values()))
    counts = dict(sorted(counts.items()))
    labeled = {split: Counter(train_tissue_of[n] for n in lab) for split, (lab, _) in parts.items()}
    header = ''.join(f'{"fold" + str(f):>8}' for f in counts)
    header += ''.join(f'{s:>7}' for s in parts)
    print(f'{"tissue":<16}{header}   (partitions: labeled images of fold{train_fold})')
    for tissue in sorted(set().union(*counts.values())):
        row = ''.join(f'{c[tissue]:>8}' for c in counts.values())
        row += ''.join(f'{labeled[s][tissue]:>7}' for s in parts)
        print(f'{tissue:<16}{row}')
    totals = ''.join(f'{sum(c.values()):>8}' for c in counts.values())
    totals += ''.join(f'{len(lab):>7}' for lab, _ in parts.values())
    print(f'{"total":<16}{totals}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='PanNuke root with "Fold 1", "Fold 2", "Fold 3"')
    parser.add_argument('dst', help='output root, e.g. data/pannuke')
    parser.add_argument(
        '--folds', type=int, nargs='+', default=[1, 2, 3], help='folds to convert (default: 1 2 3)')
    parser.add_argument(
        '--train-fold',
        type=int,
        default=1,
        help='fold to partition into labeled/unlabeled (default: 1)')
    parser.add_argument('--seed', type=int, default=0, help='partition seed (default: 0)')
    parser.add_argument(
        '--chunk-size',
        type=int,
        default=32,
        help='images read from the arrays at a time (default: 32)')
    args = parser.parse_args()
    types_file = osp.join(args.dst, 'types', f'fold{args.train_fold}.txt')
    if args.train_fold not in args.folds and not osp.isfile(types_file):
        # Say so before converting anything rather than after.
        raise SystemExit(f'error: --train-fold {args.train_fold} is neither in --folds nor '
                         f'converted before ({types_file} is missing)')
    try:
        # Validates every fold first: a bad fold 3 should not surface after fold 1 is done.
        summaries, parts = convert_pannuke(args.src, args.dst, args.folds, args.train_fold,
                                           args.seed, args.chunk_size, progress_printer())
        # The training fold may come from an earlier run; its types file is the record.
        train_tissue_of = dict(zip(*read_tissue_types(types_file)))
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'error: {error}')
    for summary in summaries.values():
        print_classes(summary)
    print_tissues({
        fold: s.tissues
        for fold, s in summaries.items()
    }, args.train_fold, train_tissue_of, parts)
    print(f'partitions of fold{args.train_fold} (seed {args.seed}) written to '
          f'{args.dst}/splits/fold{args.train_fold}: ' +
          ', '.join(f'{s} {len(lab)}/{len(unlab)}' for s, (lab, unlab) in parts.items()))
    mismatch = packaged_mismatch(args.train_fold, list(train_tissue_of.values()))
    if mismatch is None and args.seed == 0:
        print('these are the partitions shipped with mmcora (mmcora/datasets/splits/pannuke)')
    elif mismatch is not None:
        print(
            f'WARNING: your tissue types differ from the PanNuke release mmcora drew its '
            f'shipped partitions from ({mismatch}); the lists written are drawn from your '
            f'types, so results on them are not comparable with the shipped partitions',
            file=sys.stderr)


if __name__ == '__main__':
    main()
