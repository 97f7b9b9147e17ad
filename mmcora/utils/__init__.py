from .dist import main_process_first
from .fileio import file_sha256, write_atomic, write_png_atomic

__all__ = ['file_sha256', 'main_process_first', 'write_atomic', 'write_png_atomic']
