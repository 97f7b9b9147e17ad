from .reasoning import (CLIPInputs, LoadReasoningAnnotations, PackReasoningInputs, SAMResize,
                        SampleQueries, queries_of, square_resize)
from .semi import LoadEmptyAnnotations, PackSemiSegInputs, StrongViews

__all__ = [
    'CLIPInputs', 'LoadEmptyAnnotations', 'LoadReasoningAnnotations', 'PackSemiSegInputs',
    'StrongViews', 'PackReasoningInputs', 'SAMResize',
    'SampleQueries', 'queries_of', 'square_resize'
]
