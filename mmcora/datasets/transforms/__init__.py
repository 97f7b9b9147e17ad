from .reasoning import (CLIPInputs, LoadReasoningAnnotations, PackReasoningInputs, SAMResize,
                        SampleQueries, queries_of, square_resize)
from .pseudo import CorruptPseudoMask, LoadPseudoLabel, SamplePseudoQueries
from .semi import LoadEmptyAnnotations, PackSemiSegInputs, StrongViews

__all__ = [
    'CLIPInputs', 'CorruptPseudoMask', 'LoadEmptyAnnotations', 'LoadPseudoLabel',
    'SamplePseudoQueries', 'LoadReasoningAnnotations', 'PackSemiSegInputs', 'StrongViews',
    'PackReasoningInputs', 'SAMResize', 'SampleQueries', 'queries_of', 'square_resize'
]
