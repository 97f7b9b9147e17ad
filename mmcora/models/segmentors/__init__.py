from .cora import CORASegmentor
from .unimatch import UniMatch, UniMatchGTPseudoLabels

__all__ = ['CORASegmentor', 'UniMatch', 'UniMatchGTPseudoLabels']
