"""Atomic file output (an interrupted run never leaves a partial file under the final name) and
file hashes."""
import hashlib
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


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks of ``chunk`` bytes (1 MiB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()
