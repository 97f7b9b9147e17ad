from .reasoning_data_sample import ReasoningDataSample

__all__ = ['ReasoningDataSample']
