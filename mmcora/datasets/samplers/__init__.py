from .multi_source import MultiSourceSampler

__all__ = ['MultiSourceSampler']
