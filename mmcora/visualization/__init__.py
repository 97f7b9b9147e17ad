from .draw import PALETTE, draw_reasoning_masks
from .hook import ReasoningVisualizationHook

__all__ = ['PALETTE', 'ReasoningVisualizationHook', 'draw_reasoning_masks']
