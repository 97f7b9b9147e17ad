"""Checks of the model files a config names, made before anything large is built or loaded.

``from_pretrained`` of a bad Hugging Face directory fails late and vaguely: a missing
``config.json`` makes Qwen2.5-VL and LLaVA build (and allocate) a full-size model of their
default config before anything is read, a missing shard is found after the model is built,
and a truncated ``.safetensors`` file names no file. :func:`check_hf_directory` finds all of
these from the file names and the safetensors headers alone (a few kilobytes read), and names
the config key, the path and the first missing file.

Segmentors call :func:`check_model_paths` on each sub-model config before building any of
them, so a bad path of the second model is reported before the first (a 7B language model)
loads. A registered class takes part by defining ``check_paths(cfg, key)``.
"""
import json
import os
import os.path as osp
import zipfile
from typing import Optional

CONFIG = 'config.json'
# What ``from_pretrained`` looks for, in its order of preference (a single file, then shards).
SAFETENSORS, SAFETENSORS_INDEX = 'model.safetensors', 'model.safetensors.index.json'
TORCH_BIN, TORCH_BIN_INDEX = 'pytorch_model.bin', 'pytorch_model.bin.index.json'
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX)


def check_hf_directory(path: str,
                       key: str,
                       what: str,
                       example: Optional[str] = None,
                       weights: bool = True) -> None:
    """Fail unless ``path`` is a complete Hugging Face ``save_pretrained`` directory.

    Complete means: a directory with a readable ``config.json`` and weights that
    ``from_pretrained`` can find (``model.safetensors``, or an index whose shards are all
    there, or ``pytorch_model.bin``), every safetensors file as long as its header says.

    Args:
        path (str): The directory.
        key (str): The config key it comes from, for the message (``'model.mllm.pretrained'``).
        what (str): The model's name for the message (``'LLaVA'``).
        example (str, optional): A directory name to suggest (``'llava-1.5-7b-hf'``).
        weights (bool): Check the weights too; False for a model built from ``config.json``
            alone (``tools/analysis/model_size.py``).

    Raises:
        FileNotFoundError: ``path`` does not exist or is a file, or ``config.json``, the
            weights or a shard is missing (the first missing shard is named).
        ValueError: ``config.json`` or a shard index is not valid JSON, or a safetensors or
            ``.bin`` file is truncated or corrupt.
    """
    kind = 'a Hugging Face save_pretrained directory' + (f', e.g. {example}' if example else '')
    if not osp.exists(path):
        raise FileNotFoundError(f'{key}: {what} directory not found: {path} ({kind})')
    if not osp.isdir(path):
        raise FileNotFoundError(f'{key}: {path} is a file, not a {what} directory ({kind})')
    config = osp.join(path, CONFIG)
    if not osp.isfile(config):
        raise FileNotFoundError(f'{key}: {path} has no {CONFIG}, so it is not a complete {what} '
                                f'directory ({kind}; an interrupted download?)')
    _read_json(config, key)
    if not weights:
        return
    found = [name for name in WEIGHT_FILES if osp.isfile(osp.join(path, name))]
    if not found:
        raise FileNotFoundError(f'{key}: {path} has {CONFIG} but no {what} weights (none of '
                                f'{", ".join(WEIGHT_FILES)}): half downloaded?')
    name = found[0]
    if name in (SAFETENSORS, TORCH_BIN):
        files = [osp.join(path, name)]
    else:
        index = _read_json(osp.join(path, name), key)
        weight_map = index.get('weight_map') if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f'{key}: {osp.join(path, name)} has no weight_map of tensor names '
                             'to shard files')
        shards = sorted(set(map(str, weight_map.values())))
        missing = [s for s in shards if not osp.isfile(osp.join(path, s))]
        if missing:
            raise FileNotFoundError(f'{key}: {path} is incomplete: {len(missing)} of '
                                    f'{len(shards)} weight shards named by {name} are missing, '
                                    f'first: {missing[0]} (half downloaded?)')
        files = [osp.join(path, s) for s in shards]
    for file in files:
        reason = (
            _safetensors_problem(file) if file.endswith('.safetensors') else _zip_problem(file))
        if reason:
            raise ValueError(f'{key}: {what} weights {file} are truncated or corrupt ({reason}); '
                             'copy or download the file again')


def check_file(path: str, key: str, what: str) -> None:
    """Fail unless ``path`` (``~`` expanded) is a file.

    Args:
        path (str): The file.
        key (str): The config key it comes from (``'model.sam.checkpoint'``).
        what (str): Its name for the message (``'SAM checkpoint'``).

    Raises:
        FileNotFoundError: Naming the key and the path.
    """
    if not osp.isfile(osp.expanduser(path)):
        problem = 'is a directory, not a file' if osp.isdir(osp.expanduser(path)) else 'not found'
        raise FileNotFoundError(f'{key}: {what} {problem}: {path}')


def check_model_paths(cfg: Optional[dict], key: str) -> None:
    """Check the files a sub-model config names, before anything is built.

    Calls ``check_paths(cfg, key)`` of the registered class of ``cfg['type']`` when it has
    one; other configs (and types the registry does not know, which the build reports) pass.

    Args:
        cfg (dict, optional): The sub-model config (``model.reasoner``); None passes.
        key (str): Its config key (``'model.reasoner'``).
    """
    if not cfg or 'type' not in cfg:
        return
    from mmseg.registry import MODELS
    cls = cfg['type'] if isinstance(cfg['type'], type) else MODELS.get(cfg['type'])
    check = getattr(cls, 'check_paths', None)
    if check is not None:
        check(cfg, key)


def _read_json(file: str, key: str):
    try:
        with open(file, encoding='utf-8') as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f'{key}: {file} is not valid JSON ({error}): truncated or '
                         'corrupt?') from None


def _safetensors_problem(file: str) -> Optional[str]:
    """Why the safetensors ``file`` cannot load, from its header alone, or None.

    The format is an 8-byte little-endian header length, a JSON header giving every tensor's
    byte range, then the data; the loader refuses a file the ranges do not cover exactly.
    """
    size = os.path.getsize(file)
    with open(file, 'rb') as f:
        head = f.read(8)
        if len(head) < 8:
            return f'{size} bytes, shorter than the 8-byte header length'
        length = int.from_bytes(head, 'little')
        if 8 + length > size:
            return f'a {length}-byte header announced, {size - 8} bytes follow'
        try:
            header = json.loads(f.read(length))
        except (ValueError, UnicodeDecodeError):
            return 'its header is not JSON'
    if not isinstance(header, dict):
        return 'its header is not a JSON object'
    try:
        end = max((int(t['data_offsets'][1]) for k, t in header.items() if k != '__metadata__'),
                  default=0)
    except (KeyError, IndexError, TypeError, ValueError):
        return 'its header has tensors without data_offsets'
    if 8 + length + end != size:
        return f'{size} bytes, its header describes {8 + length + end}'
    return None


def _zip_problem(file: str) -> Optional[str]:
    """Why a torch ``.bin`` (zip format) cannot load, or None; legacy pickles are not read."""
    with open(file, 'rb') as f:
        magic = f.read(4)
    if not magic:
        return 'an empty file'
    if magic.startswith(b'PK') and not zipfile.is_zipfile(file):
        return 'a zip archive without its end (the central directory)'
    return None
