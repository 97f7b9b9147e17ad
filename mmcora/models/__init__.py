from . import segzero  # noqa: F401  registers the rewards in mmcora.registry.REWARDS
from .data_preprocessor import ReasoningDataPreProcessor
from .losses import *  # noqa: F401,F403
from .mllm import *  # noqa: F401,F403
from .sam import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .semi_data_preprocessor import SemiSegDataPreProcessor

__all__ = ['ReasoningDataPreProcessor', 'SemiSegDataPreProcessor']
