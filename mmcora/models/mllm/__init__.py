from .heads import AnchorEncoder, SegTokenProjector
from .llava_mllm import LlavaMLLM, QueryTokens
from .tiny_llava import ensure_tiny_llava, write_tiny_llava

__all__ = [
    'AnchorEncoder', 'LlavaMLLM', 'QueryTokens', 'SegTokenProjector', 'ensure_tiny_llava',
    'write_tiny_llava'
]
