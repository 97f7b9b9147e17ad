from .reasoning import (CLIPInputs, LoadReasoningAnnotations, PackReasoningInputs, SAMResize,
                        SampleQueries, queries_of, square_resize)

__all__ = [
    'CLIPInputs', 'LoadReasoningAnnotations', 'PackReasoningInputs', 'SAMResize',
    'SampleQueries', 'queries_of', 'square_resize'
]
