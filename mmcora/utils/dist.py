"""Distributed helpers."""
from typing import Any, Callable

from mmengine.dist import barrier, get_dist_info, is_distributed


def main_process_first(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Run ``fn`` on rank 0 first, then on the other ranks.

    For idempotent preparation (generating data, writing a tiny model): rank 0 does the work
    while the others wait, then the others find it done.
    """
    if get_dist_info()[0] == 0:
        result = fn(*args, **kwargs)
    if is_distributed():
        barrier()
    if get_dist_info()[0] != 0:
        result = fn(*args, **kwargs)
    return result
