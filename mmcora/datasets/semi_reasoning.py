"""``SemiReasoningDataset``: unlabeled images with a teacher's pseudo-labels (CORA stage 3)."""
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS
from PIL import Image

from ..instructions.builder import LAYOUTS
from ..instructions.query_bank import QueryBank
from ..utils import main_process_first
from .partitions import read_name_list
from .toy_city_generator import ToyCitySpec, ensure_toy_city


def _size(path: str):
    """(H, W) from the file header, without decoding the pixels."""
    with Image.open(path) as image:
        return image.height, image.width


@DATASETS.register_module()
class SemiReasoningDataset(BaseDataset):
    """Unlabeled images of a split list, each with its pseudo-label (and confidence) map.

    ``tools/export_pseudo_labels.py`` writes, for every image ``<name>`` of the list,
    ``<pseudo_dir>/<name>_pseudo.png`` (class ids) and ``<name>_conf.png`` (confidence x 255).
    Per draw the pipeline's ``SamplePseudoQueries`` picks a class of the pseudo-label and K
    queries for it from the query bank (see :mod:`mmcora.datasets.transforms.pseudo`).

    Everything that can be checked without decoding pixels is checked when the dataset is
    built, before training: every image, pseudo-label and confidence file exists, the maps have
    their image's size, and every class to be drawn has at least K queries in the bank.

    Args:
        ann_file (str): List of image names (e.g. ``splits/1_30/unlabeled.txt``), relative to
            ``data_root``.
        data_root (str): Data set root.
        pseudo_dir (str): Directory of the pseudo-labels, relative to ``data_root`` (one per
            partition and teacher, e.g. ``pseudo/unimatch_1_30``).
        dataset (str): Layout and vocabulary: ``'cityscapes'`` (also the toy city) or ``'pannuke'``.
        data_prefix (dict): ``img_path`` directory under ``data_root``.
        img_suffix (str, optional): Image suffix after the name (default: the layout's).
        pseudo_suffix / conf_suffix (str | None): Suffixes of the exported maps; ``conf_suffix``
            None reads no confidence (needed only by the confidence-threshold baseline).
        query_bank (dict, optional): ``QueryBank`` arguments (``dataset`` defaults to ``dataset``,
            ``extra_file`` adds rephrasings, ``classes`` to this data set's classes, so a file
            naming another class is refused); ``min_queries`` is set to K.
        num_queries (int): K, to check the bank against (the pipeline's ``SamplePseudoQueries``
            must use the same).
        sample_classes (Sequence[str], optional): Class names to draw from (default: every class but
            ``background``).
        toy_city (dict, optional): Generate the toy city at ``data_root`` first (ToyCitySpec
            arguments).
        **kwargs (dict): ``BaseDataset`` arguments (``pipeline``, ...).

    Raises:
        FileNotFoundError / ValueError: Naming the list file's line and the file at fault,
            or the class and the query bank.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str,
                 pseudo_dir: str,
                 dataset: str = 'cityscapes',
                 data_prefix: dict = dict(img_path='leftImg8bit/train'),
                 img_suffix: Optional[str] = None,
                 pseudo_suffix: str = '_pseudo.png',
                 conf_suffix: Optional[str] = '_conf.png',
                 query_bank: Optional[dict] = None,
                 num_queries: int = 7,
                 sample_classes: Optional[Sequence[str]] = None,
                 toy_city: Optional[dict] = None,
                 **kwargs) -> None:
        if dataset not in LAYOUTS:
            raise ValueError(f'dataset must be one of {sorted(LAYOUTS)}, got {dataset!r}')
        layout = LAYOUTS[dataset]
        self.pseudo_dir = osp.join(data_root, pseudo_dir)
        self.img_suffix = layout.img_suffix if img_suffix is None else img_suffix
        self.pseudo_suffix, self.conf_suffix = pseudo_suffix, conf_suffix
        self.classes = tuple(layout.classes)
        bank_args = dict(dict(dataset=layout.vocabulary), **(query_bank or {}))
        bank_args['min_queries'] = num_queries
        bank_args.setdefault('classes', self.classes)  # a bank file may name only these
        self.query_bank = QueryBank(**bank_args).banks
        names = tuple(sample_classes) if sample_classes is not None else tuple(c
                                                                               for c in self.classes
                                                                               if c != 'background')
        for name in names:
            if name not in self.classes:
                raise ValueError(f'sample_classes: {name!r} is not a {dataset} class '
                                 f'{self.classes}')
            if name not in self.query_bank:
                source = bank_args.get('extra_file') or f'the built-in {dataset} bank'
                raise ValueError(f'class {name!r} has no queries in {source}; add it with '
                                 'query_bank=dict(extra_file=...)')
        self.sample_class_names = names
        self.sample_class_ids = tuple(self.classes.index(n) for n in names)
        if toy_city is not None:
            main_process_first(ensure_toy_city, data_root, ToyCitySpec(**toy_city))
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            metainfo=dict(classes=self.classes, dataset=dataset),
            **kwargs)
        for transform in self.pipeline.transforms:
            drawn = getattr(transform, 'num_queries', num_queries)
            if type(transform).__name__ == 'SamplePseudoQueries' and drawn != num_queries:
                raise ValueError(f'the pipeline\'s SamplePseudoQueries draws {drawn} queries, '
                                 f'the dataset checked the bank for num_queries={num_queries}')

    def load_data_list(self) -> List[dict]:
        """One item per listed image; fail on the first missing or mis-sized file."""
        if not osp.isdir(self.pseudo_dir):
            raise FileNotFoundError(
                f'pseudo-label directory not found: {self.pseudo_dir} (write it with '
                f'tools/export_pseudo_labels.py CONFIG CKPT --ann-file ... --out '
                f'{self.pseudo_dir})')
        data_list = []
        for line, name in enumerate(read_name_list(self.ann_file), start=1):
            where = f'{self.ann_file} line {line}'
            img = osp.join(self.data_prefix['img_path'], name + self.img_suffix)
            pseudo = osp.join(self.pseudo_dir, name + self.pseudo_suffix)
            conf = None if self.conf_suffix is None else osp.join(self.pseudo_dir, name +
                                                                  self.conf_suffix)
            for path, what in ((img, 'image'), (pseudo, 'pseudo-label'), (conf, 'confidence map')):
                if path is not None and not osp.isfile(path):
                    raise FileNotFoundError(f'{where}: {what} missing: {path}')
            shape = _size(img)
            for path, what in ((pseudo, 'pseudo-label'), (conf, 'confidence map')):
                if path is not None and _size(path) != shape:
                    raise ValueError(f'{where}: {what} {path} is {_size(path)}, the image '
                                     f'{img} is {shape}')
            data_list.append(
                dict(
                    img_path=img,
                    pseudo_path=pseudo,
                    conf_path=conf,
                    height=shape[0],
                    width=shape[1]))
        if not data_list:
            raise ValueError(f'{self.ann_file} lists no images')
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """The item plus what the pipeline's sampling needs (shared, not copied per item)."""
        info = super().get_data_info(idx)
        info.update(
            num_classes=len(self.classes),
            query_bank=self.query_bank,
            sample_class_ids=self.sample_class_ids,
            sample_class_names=self.sample_class_names)
        return info
