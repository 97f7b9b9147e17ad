"""``ReasoningSegDataset``: images of a split with their instruction set (N queries each)."""
import logging
import os.path as osp
from dataclasses import asdict
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from ..instructions import build_instruction_set, read_instruction_file
from ..instructions.engine import ENGINE_VERSION
from ..instructions.records import QUERY_TYPES
from ..utils import main_process_first
from .toy_city_generator import ToyCitySpec, ensure_toy_city


@DATASETS.register_module()
class ReasoningSegDataset(BaseDataset):
    """Labeled images with instructions from an instruction-set file (JSONL).

    Each item is one image with all its queries of the selected types; the pipeline's
    ``SampleQueries`` draws N of them per training step.

    Args:
        ann_file (str): Instruction file, relative to ``data_root`` (see
            :mod:`mmcora.instructions.records`).
        data_root (str): Data set root.
        data_prefix (dict): ``img_path`` and ``seg_map_path`` directories under ``data_root``.
        img_suffix (str): Appended to an instruction record's ``image`` name.
        seg_map_suffix (str): Appended to find the label map.
        query_types (Sequence[str], optional): Keep only these instruction types (None keeps
            all); each one of ``semantic``, ``attribute``, ``conditional``.
        build_instructions (dict, optional): If the instruction file is missing, build it offline
            with :func:`~mmcora.instructions.build_instruction_set` and these arguments
            (``dataset``, ``split``, ``ann_file`` of the split list, ``seed``, ...).
        toy_city (dict, optional): Generate the toy city at ``data_root`` first (ToyCitySpec
            arguments).
        **kwargs (dict): ``BaseDataset`` arguments (``pipeline``, ``test_mode``, ...).
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str,
                 data_prefix: dict = dict(
                     img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                 img_suffix: str = '_leftImg8bit.png',
                 seg_map_suffix: str = '_gtFine_labelTrainIds.png',
                 query_types: Optional[Sequence[str]] = None,
                 build_instructions: Optional[dict] = None,
                 toy_city: Optional[dict] = None,
                 **kwargs) -> None:
        self.img_suffix, self.seg_map_suffix = img_suffix, seg_map_suffix
        if isinstance(query_types, str):  # ('semantic') is a string, not a tuple
            query_types = (query_types, )
        unknown = [t for t in query_types or () if t not in QUERY_TYPES]
        if unknown:  # a misspelt type silently dropped its queries
            raise ValueError(f'query_types {unknown} are not instruction types; choose from '
                             f'{list(QUERY_TYPES)}')
        self.query_types = tuple(query_types) if query_types else None
        if toy_city is not None:
            main_process_first(ensure_toy_city, data_root, ToyCitySpec(**toy_city))
        if build_instructions is not None:
            # Every rank enters (never decide per rank: a rank that skipped the barrier
            # would meet the others in a different collective); _build skips a built file.
            main_process_first(self._build, data_root, osp.join(data_root, ann_file),
                               build_instructions)
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, **kwargs)

    @staticmethod
    def _build(data_root: str, path: str, arguments: dict) -> None:
        if not osp.isfile(path):
            build_instruction_set(data_root, out=path, **arguments)

    def load_data_list(self) -> List[dict]:
        """Read the instruction file; fail before training on any missing image or label map.

        Raises:
            FileNotFoundError: Naming the first missing file and how many are missing.
        """
        header, records = read_instruction_file(self.ann_file)
        if header.get('engine_version') not in (None, ENGINE_VERSION):
            print_log(
                f'{self.ann_file} was made by instruction engine version '
                f'{header.get("engine_version")}, this mmcora makes version '
                f'{ENGINE_VERSION}: numbers are comparable only with runs on the same '
                'file',
                logger='current',
                level=logging.WARNING)
        self._metainfo.update(classes=tuple(header['classes']), dataset=header['dataset'])
        data_list, missing = [], []
        for record in records:
            queries = [
                asdict(q) for q in record.queries
                if self.query_types is None or q.type in self.query_types
            ]
            if not queries:
                continue
            img = osp.join(self.data_prefix['img_path'], record.image + self.img_suffix)
            seg = osp.join(self.data_prefix['seg_map_path'], record.image + self.seg_map_suffix)
            missing += [p for p in (img, seg) if not osp.isfile(p)]
            data_list.append(
                dict(
                    img_path=img,
                    seg_map_path=seg,
                    queries=queries,
                    height=record.height,
                    width=record.width))
        if missing:
            raise FileNotFoundError(f'{len(missing)} files named by {self.ann_file} are '
                                    f'missing, first: {missing[0]}')
        if not data_list:
            raise ValueError(f'{self.ann_file} has no queries of types {self.query_types}')
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """The item plus ``num_classes``, against which ``LoadReasoningAnnotations`` checks the
        label map's ids."""
        info = super().get_data_info(idx)
        info['num_classes'] = len(self._metainfo['classes'])  # metainfo deep-copies
        return info
