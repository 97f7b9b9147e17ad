from .partitions import (PARTITIONS, install_split_lists, packaged_split_file, partition_names,
                         read_name_list)
from .toy_city import ToyCitySpec, ensure_toy_city, generate_toy_city
from .reasoning_seg import ReasoningSegDataset
from .toy_cityscapes import ToyCityscapesDataset
from .transforms import *  # noqa: F401,F403  registers the transforms

__all__ = [
    'PARTITIONS', 'ReasoningSegDataset', 'ToyCitySpec', 'ToyCityscapesDataset', 'ensure_toy_city', 'generate_toy_city',
    'install_split_lists', 'packaged_split_file', 'partition_names', 'read_name_list'
]
