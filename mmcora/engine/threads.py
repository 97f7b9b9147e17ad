"""``env_cfg.torch_num_threads``: the intra-op thread count of a run, set from its config.

mmengine sets OpenCV's threads and ``OMP_NUM_THREADS`` for data-loader workers
(``env_cfg.mp_cfg``) but leaves torch's own intra-op pool at one thread per core. For the
tiny toy models on a small machine that is slower than one thread (see the README's timing of
the main command), and it makes a run's floating-point sums depend on the machine's core
count. A config may fix the count::

    env_cfg = dict(torch_num_threads=1)

``tools/train.py``, ``tools/test.py`` and ``tools/export_pseudo_labels.py`` apply it before the
Runner is built; an ``OMP_NUM_THREADS`` in the environment wins (the user's explicit choice).
"""
import os

import torch
from mmengine.config import Config
from mmengine.logging import print_log


def apply_torch_threads(cfg: Config) -> None:
    """Set torch's intra-op threads from ``cfg.env_cfg.torch_num_threads`` (if given).

    Raises:
        ValueError: The value is not a positive integer (the key is named).
    """
    threads = cfg.get('env_cfg', {}).get('torch_num_threads')
    if threads is None:
        return
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f'env_cfg.torch_num_threads must be a positive integer, got {threads!r}')
    if os.environ.get('OMP_NUM_THREADS'):
        print_log(
            f'OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]} is set: it wins over '
            f'env_cfg.torch_num_threads={threads}',
            logger='current')
        return
    torch.set_num_threads(threads)
