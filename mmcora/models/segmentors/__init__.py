from .cora import CORASegmentor
from .semi_cora import SemiCORASegmentor
from .snapshot import ParameterSnapshot
from .token_bank import TokenBank
from .unimatch import UniMatch, UniMatchGTPseudoLabels

__all__ = [
    'CORASegmentor', 'ParameterSnapshot', 'SemiCORASegmentor', 'TokenBank', 'UniMatch',
    'UniMatchGTPseudoLabels'
]
