"""Copy mmcora's Cityscapes partition lists (UniMatch 1/30 ... 1/2, val) into a data root.

    python tools/dataset_converters/cityscapes_splits.py data/cityscapes

Writes ``<root>/splits/{1_30,1_16,1_8,1_4,1_2}/{labeled,unlabeled}.txt`` and
``<root>/splits/val.txt`` in the form mmseg's ``CityscapesDataset`` reads as ``ann_file``.
A root that does not exist is refused (a typo would otherwise make a new directory). The
lists may be installed before the images: what is not there yet is reported, and missing
``*_gtFine_labelTrainIds.png`` maps come with the command that makes them.
"""
import argparse
import glob
import os.path as osp
from typing import List

from mmcora.datasets import install_split_lists, read_name_list

TRAIN_IDS_HINT = ('make them with cityscapesscripts: pip install cityscapesscripts==2.2.4 && '
                  'CITYSCAPES_DATASET=<root> csCreateTrainIdLabelImgs '
                  '(docs/data_preparation.md, step 2)')


def missing(root: str, split: str, names: List[str], folder: str, suffix: str) -> List[str]:
    """The names of ``names`` whose ``<root>/<folder>/<split>/<name><suffix>`` is absent."""
    return [n for n in names if not osp.isfile(osp.join(root, folder, split, n + suffix))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='Cityscapes root (holds leftImg8bit/ and gtFine/)')
    args = parser.parse_args()
    if not osp.isdir(args.root):
        raise SystemExit(f'error: {args.root} is not a directory: give the Cityscapes root '
                         '(the folder holding leftImg8bit/ and gtFine/)')
    out = install_split_lists('cityscapes', args.root)
    print(f'partition lists written to {out}')
    labeled = sorted({
        name
        for path in glob.glob(osp.join(out, '*', 'labeled.txt'))
        for name in read_name_list(path)
    })
    val = read_name_list(osp.join(out, 'val.txt'))
    for split, names, what in (('train', labeled, 'train images labeled in a partition'),
                               ('val', val, 'val images')):
        images = missing(args.root, split, names, 'leftImg8bit', '_leftImg8bit.png')
        if images:
            print(f'note: {len(images)} of {len(names)} {what} '
                  f'are not under {args.root}/leftImg8bit/{split} yet (first: {images[0]}); '
                  'see docs for data preparation')
        absent = set(images)
        present = [n for n in names if n not in absent]
        labels = missing(args.root, split, present, 'gtFine', '_gtFine_labelTrainIds.png')
        if labels:  # the images are there but not their train-id maps
            print(f'note: {len(labels)} {split} images have no *_gtFine_labelTrainIds.png '
                  f'under {args.root}/gtFine/{split} (first: {labels[0]}); '
                  f'{TRAIN_IDS_HINT.replace("<root>", args.root)}')


if __name__ == '__main__':
    main()
