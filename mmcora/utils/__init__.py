from .dist import main_process_first

__all__ = ['main_process_first']
