"""Copy mmcora's Cityscapes partition lists (UniMatch 1/30 ... 1/2, val) into a data root.

    python tools/dataset_converters/cityscapes_splits.py data/cityscapes

Writes ``<root>/splits/{1_30,1_16,1_8,1_4,1_2}/{labeled,unlabeled}.txt`` and
``<root>/splits/val.txt`` in the form mmseg's ``CityscapesDataset`` reads as ``ann_file``.
"""
import argparse
import os.path as osp

from mmcora.datasets import install_split_lists, read_name_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='Cityscapes root (holds leftImg8bit/ and gtFine/)')
    args = parser.parse_args()
    out = install_split_lists('cityscapes', args.root)
    missing = [
        name for name in read_name_list(osp.join(out, 'val.txt'))
        if not osp.isfile(osp.join(args.root, 'leftImg8bit', 'val', f'{name}_leftImg8bit.png'))
    ]
    print(f'partition lists written to {out}')
    if missing:
        print(f'note: {len(missing)} val images are not under {args.root}/leftImg8bit/val yet '
              f'(first: {missing[0]}); see docs for data preparation')


if __name__ == '__main__':
    main()
