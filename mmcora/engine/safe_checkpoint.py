"""Safe checkpoint loading for mmengine 0.10.7 on torch >= 2.6 (``weights_only`` unpickling).

:func:`install_checkpoint_loaders` runs when ``mmcora`` is imported and routes mmengine's local
and http(s) loaders through :func:`load_checkpoint_file`, which allows what mmengine's own
checkpoints pickle and refuses other objects unless ``MMCORA_TRUST_CHECKPOINTS=1``. A local
``.safetensors`` file (the heads of an export, ``tools/export_hf.py``) is read by
:func:`load_safetensors_checkpoint` instead: tensors only, nothing to unpickle.
"""
import json
import os
import os.path as osp
import pickle
from typing import Any, Callable, Dict, List, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'MMCORA_TRUST_CHECKPOINTS'
# The safetensors metadata entry that holds a checkpoint's ``meta`` dict (as JSON).
META_ENTRY = 'mmcora_meta'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects that may run code when loaded."""


def _numpy_globals() -> List[Any]:
    """numpy callables and classes that pickled arrays, dtypes and scalars refer to.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; a checkpoint names the module of the numpy
    that saved it, so both names are allowed for the array and scalar constructors, whichever
    numpy (``>=1.24``) is installed.
    """
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    dtype_classes = [type(np.dtype(t)) for t in np.typecodes['All'] if t not in 'O']
    both_names = [(f, f'{module}.{f.__name__}')
                  for f in (multiarray._reconstruct, multiarray.scalar)
                  for module in ('numpy.core.multiarray', 'numpy._core.multiarray')]
    return [*both_names, np.ndarray, np.dtype, *dtype_classes]


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """``getattr`` restricted to HistoryBuffer's statistics methods.

    A HistoryBuffer pickles its ``_statistics_methods`` as ``getattr(HistoryBuffer, 'min')``
    and so on (torch saves with pickle protocol 2). A general ``getattr`` would let a file
    reach any attribute of any allowed object, so only these lookups are served.
    """
    # The class fills _statistics_methods on first instantiation, so name the defaults too.
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not allowed in a checkpoint')


# What mmengine's own checkpoints contain beyond tensors and plain containers: the message
# hub's HistoryBuffer objects (with their statistics methods) and the numpy arrays and scalars
# inside them and in ``meta``.
SAFE_CHECKPOINT_GLOBALS: List[Any] = [
    HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr'), *_numpy_globals()
]


def load_checkpoint_file(filename: str, map_location: Union[str, Callable, None] = None) -> Any:
    """``torch.load`` a checkpoint without executing arbitrary pickled code.

    mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 then refuses
    mmengine's own checkpoints (the message hub pickles HistoryBuffer), so ``--resume`` and
    ``load_from`` break. We load with ``weights_only=True`` and allow exactly the extra
    classes mmengine's checkpoints need. Anything else is an error unless the user trusts the
    file (``MMCORA_TRUST_CHECKPOINTS=1``): unpickling an untrusted file can run any code.

    Raises:
        UnsafeCheckpointError: The file needs other pickled classes; the message names the
            file, the classes and the opt-in.
        RuntimeError: The file is not a readable torch checkpoint (truncated by an
            interrupted copy or save, or another format); the message names the file.
    """
    try:
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError) as error:  # e.g. "failed finding central directory"
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise RuntimeError(f'{filename} is not a readable checkpoint ({reason}): the file is '
                           'truncated or corrupt (an interrupted save or copy?) or not a '
                           'torch checkpoint') from error
    except pickle.UnpicklingError as error:
        if os.environ.get(TRUST_ENV) == '1':
            return torch.load(filename, map_location=map_location, weights_only=False)
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # legacy (non-zip) files cannot be inspected
            unsafe = [str(error).splitlines()[0]]
        allowed = {
            g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
            for g in SAFE_CHECKPOINT_GLOBALS
        }
        unsafe = [name for name in unsafe if name not in allowed] or unsafe
        raise UnsafeCheckpointError(
            f'refusing to load {filename}: it contains pickled objects that are neither '
            f'tensors nor mmengine training state ({", ".join(unsafe)}), and unpickling them '
            f'can run arbitrary code. If you trust this file, set {TRUST_ENV}=1 in the '
            'environment and run again.') from None


def save_safetensors_checkpoint(state_dict: Dict[str, torch.Tensor], meta: dict,
                                filename: str) -> None:
    """Write a state dict and its ``meta`` as one safetensors file (no pickled objects).

    Args:
        state_dict (dict[str, torch.Tensor]): The weights; each is copied to a contiguous CPU
            tensor of its own (safetensors refuses shared storage).
        meta (dict): JSON-serialisable metadata (e.g. ``trainable_only``), stored in the
            file's header.
        filename (str): The ``.safetensors`` file to write.
    """
    from safetensors.torch import save_file
    tensors = {
        name: value.detach().cpu().contiguous().clone()
        for name, value in state_dict.items()
    }
    save_file(tensors, filename, metadata={'format': 'pt', META_ENTRY: json.dumps(meta)})


def load_safetensors_checkpoint(filename: str,
                                map_location: Union[str, Callable, None] = None) -> dict:
    """Read a file of :func:`save_safetensors_checkpoint` as mmengine's checkpoint dict.

    Args:
        filename (str): A ``.safetensors`` file.
        map_location (str | Callable | None): A device name puts the tensors there; anything
            else reads them to the CPU (the model's ``load_state_dict`` moves them).

    Returns:
        dict: ``state_dict`` (name -> tensor) and ``meta`` (the stored metadata, or empty).

    Raises:
        RuntimeError: The file is not a readable safetensors file (truncated, corrupt, or its
            metadata is not JSON); the message names the file.
    """
    from safetensors import safe_open
    device = map_location if isinstance(map_location, str) else 'cpu'
    try:
        with safe_open(filename, framework='pt', device=device) as f:
            header = f.metadata() or {}
            state_dict = {name: f.get_tensor(name) for name in f.keys()}
        meta = json.loads(header.get(META_ENTRY, '{}'))
    except Exception as error:  # safetensors' own error type, OSError, JSON errors
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise RuntimeError(
            f'{filename} is not a readable safetensors checkpoint ({reason}): the '
            'file is truncated or corrupt (an interrupted export or copy?)') from None
    return dict(state_dict=state_dict, meta=meta)


def _load_local(filename: str, map_location: Union[str, Callable, None] = None) -> Any:
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    if filename.endswith('.safetensors'):
        return load_safetensors_checkpoint(filename, map_location)
    return load_checkpoint_file(filename, map_location)


def _load_http(filename: str, map_location: Union[str, Callable, None] = None) -> Any:
    # mmengine's http loader also calls torch.load without weights_only. Rank 0 downloads
    # into the torch hub cache first, then every rank loads the cached file safely.
    model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        os.makedirs(model_dir, exist_ok=True)
        torch.hub.download_url_to_file(filename, cached)
    if world_size > 1:
        barrier()
    if not osp.isfile(cached):  # another node without a shared file system
        os.makedirs(model_dir, exist_ok=True)
        torch.hub.download_url_to_file(filename, cached)
    return load_checkpoint_file(cached, map_location)


def install_checkpoint_loaders() -> None:
    """Route mmengine's local and http(s) checkpoint loading through the safe loader."""
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=_load_http, force=True)
