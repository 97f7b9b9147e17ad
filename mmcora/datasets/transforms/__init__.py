from .pseudo import CorruptPseudoMask, LoadPseudoLabel, SamplePseudoQueries
from .reasoning import (CLIPInputs, LoadReasoningAnnotations, PackReasoningInputs, SampleQueries,
                        SAMResize, queries_of, square_resize)
from .segzero import PackSegZeroInputs, SegZeroInputs, words_only
from .semi import LoadEmptyAnnotations, PackSemiSegInputs, StrongViews

__all__ = [
    'CLIPInputs', 'CorruptPseudoMask', 'LoadEmptyAnnotations', 'LoadPseudoLabel',
    'SamplePseudoQueries', 'LoadReasoningAnnotations', 'PackSemiSegInputs', 'StrongViews',
    'PackReasoningInputs', 'PackSegZeroInputs', 'SegZeroInputs', 'words_only', 'SAMResize',
    'SampleQueries', 'queries_of', 'square_resize'
]
