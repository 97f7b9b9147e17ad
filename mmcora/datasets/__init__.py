from .instruction_dataset import ReasoningSegDataset
from .pannuke import PANNUKE_CLASSES, PanNukeDataset
from .partitions import (PARTITIONS, install_split_lists, packaged_split_file, partition_names,
                         read_name_list)
from .reasonseg_benchmark import ReasonSegDataset
from .samplers import MultiSourceSampler
from .semi_reasoning import SemiReasoningDataset
from .toy_city_dataset import ToyCityscapesDataset
from .toy_city_generator import ToyCitySpec, ensure_toy_city, generate_toy_city
from .transforms import *  # noqa: F401,F403  registers the transforms

__all__ = [
    'MultiSourceSampler', 'PANNUKE_CLASSES', 'PARTITIONS', 'PanNukeDataset', 'ReasonSegDataset',
    'ReasoningSegDataset', 'SemiReasoningDataset', 'ToyCitySpec', 'ToyCityscapesDataset',
    'ensure_toy_city', 'generate_toy_city', 'install_split_lists', 'packaged_split_file',
    'partition_names', 'read_name_list'
]
