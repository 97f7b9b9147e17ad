from .cora import CORASegmentor
from .unimatch import UniMatch

__all__ = ['CORASegmentor', 'UniMatch']
