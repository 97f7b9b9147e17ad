from .inferencer import ReasoningSegInferencer

__all__ = ['ReasoningSegInferencer']
