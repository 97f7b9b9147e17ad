from .dist import main_process_first
from .fileio import write_atomic, write_png_atomic

__all__ = ['main_process_first', 'write_atomic', 'write_png_atomic']
