"""``ToyCityscapesDataset``: mmseg's ``CityscapesDataset`` over a toy city made on demand."""
from typing import Optional

from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from ..utils import main_process_first
from .toy_city_generator import ToyCitySpec, ensure_toy_city


@DATASETS.register_module()
class ToyCityscapesDataset(CityscapesDataset):
    """Cityscapes dataset that first generates the toy city at ``data_root`` if it is missing.

    The files are in the exact Cityscapes layout, so everything else (suffixes, class names,
    palette, ``ann_file`` partition lists, ``reduce_zero_label=False``) is mmseg's own
    ``CityscapesDataset``; that class reads the same tree unchanged.

    Args:
        toy_city (dict, optional): Keyword arguments of :class:`ToyCitySpec` (number of scenes,
            size, seed). An existing tree generated with other values is an error, never
            overwritten.
        **kwargs (dict): Arguments of ``CityscapesDataset`` (``data_root``, ``data_prefix``,
            ``ann_file``, ``pipeline``, ...).
    """

    def __init__(self, toy_city: Optional[dict] = None, **kwargs) -> None:
        data_root = kwargs.get('data_root')
        if not data_root:
            raise ValueError('ToyCityscapesDataset needs data_root (where the toy city lives)')
        # Rank 0 generates while the others wait, so a distributed run renders it once.
        main_process_first(ensure_toy_city, data_root, ToyCitySpec(**(toy_city or {})))
        super().__init__(**kwargs)
