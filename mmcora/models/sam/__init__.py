from .sam_wrapper import (SAM_PIXEL_MEAN, SAM_PIXEL_STD, TINY_DEFAULTS, SAMWrapper, build_tiny_sam,
                          load_sam_state_dict)

__all__ = [
    'SAMWrapper', 'build_tiny_sam', 'load_sam_state_dict', 'TINY_DEFAULTS', 'SAM_PIXEL_MEAN',
    'SAM_PIXEL_STD'
]
