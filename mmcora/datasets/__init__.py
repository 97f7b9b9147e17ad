from .partitions import (PARTITIONS, install_split_lists, packaged_split_file, partition_names,
                         read_name_list)
from .toy_city import ToyCitySpec, ensure_toy_city, generate_toy_city
from .toy_cityscapes import ToyCityscapesDataset

__all__ = [
    'PARTITIONS', 'ToyCitySpec', 'ToyCityscapesDataset', 'ensure_toy_city', 'generate_toy_city',
    'install_split_lists', 'packaged_split_file', 'partition_names', 'read_name_list'
]
