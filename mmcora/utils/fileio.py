"""Atomic file output: an interrupted run never leaves a partial file under the final name."""
import os
import os.path as osp

import cv2
import numpy as np


def write_atomic(path: str, data: bytes, tmp_suffix: str = '.part') -> None:
    """Write ``data`` to ``path + tmp_suffix`` and rename it into place.

    The temporary name is fixed per output, so a rerun that redoes the output overwrites
    whatever a killed run left there; it must not end in the suffix a directory scan looks for
    (mmseg scans for ``.png``).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + tmp_suffix
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def write_png_atomic(path: str, array: np.ndarray, tmp_suffix: str = '.part') -> None:
    """Encode ``array`` (H, W) or (H, W, 3) BGR as PNG and :func:`write_atomic` it."""
    ok, data = cv2.imencode('.png', array)
    if not ok:
        raise OSError(f'could not encode {path}')
    write_atomic(path, data.tobytes(), tmp_suffix)
