from .cora import CORASegmentor

__all__ = ['CORASegmentor']
