"""Class names of the data sets mmcora reads, in label-id order.

They sit below both ``datasets`` (which labels maps with them) and ``instructions`` (which
names them in text), so neither package imports the other for them.
"""
from typing import Tuple

# Cityscapes' 19 train ids (mmseg's CityscapesDataset METAINFO order).
CITYSCAPES_CLASSES: Tuple[str, ...] = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                                       'traffic light', 'traffic sign', 'vegetation', 'terrain',
                                       'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                                       'motorcycle', 'bicycle')
# Label id = PanNuke mask channel + 1 for channels 0-4; channel 5 (background) becomes 0.
# mmseg's projects/pannuke lists 'non-neoplastic epithelial' second, which mislabels ids 2-5.
PANNUKE_CLASSES: Tuple[str, ...] = ('background', 'neoplastic', 'inflammatory', 'connective',
                                    'dead', 'epithelial')
