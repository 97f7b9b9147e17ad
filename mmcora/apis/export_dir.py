"""An exported CORA directory (``tools/export_hf.py``): its layout, and the checks made before
anything is loaded from it.

Layout::

    OUT/llava/             the LLaVA with its LoRA merged (save_pretrained), its tokenizer
                           (with [SEG] and the anchor tokens) and its CLIP image processor
    OUT/heads.safetensors  the rest of the segmentor's state dict (SAM's prompt encoder and
                           mask decoder, the [SEG] projector, the anchor encoder), with the
                           fingerprints of the base weights it goes with (``trainable_only``)
    OUT/sam.pth            only when the source SAM had no base file (random weights)
    OUT/config.py          an mmengine config that builds the model from this directory;
                           its paths are relative to itself (``{{ fileDirname }}``)
    OUT/export.json        written last: the files and their sizes, the source config and
                           checkpoint (sha256), the mmcora version, what was merged

A config is an export's when it has the :data:`EXPORT_KEY` entry; its ``load_from`` names the
heads, so ``tools/test.py OUT`` (or ``OUT/config.py``), ``tools/train.py OUT/config.py`` and
``ReasoningSegInferencer(OUT)`` need no checkpoint argument. :func:`load_config` checks the
directory first: a missing or cut-short file is named before any model is built.
"""
import json
import os.path as osp
from typing import Optional, Tuple, Union

from mmengine.config import Config

FORMAT = 'mmcora-cora-export'
EXPORT_VERSION = 1
EXPORT_KEY = 'mmcora_export'  # the exported config's marker: dict(dir=..., version=...)
CONFIG_FILE = 'config.py'
META_FILE = 'export.json'
HEADS_FILE = 'heads.safetensors'
SAM_FILE = 'sam.pth'
LLAVA_DIR = 'llava'
DIR_VAR = '{{ fileDirname }}'  # mmengine replaces it by the config file's directory
TOOL = 'tools/export_hf.py'


def read_export_meta(directory: str) -> dict:
    """The ``export.json`` of an export directory, format and version checked.

    Args:
        directory (str): The export directory (``OUT`` of ``tools/export_hf.py``).

    Returns:
        dict: The parsed ``export.json``.

    Raises:
        FileNotFoundError: No such directory, or it holds no ``export.json`` (an interrupted
            export or a directory that is not an export); the message names the file.
        ValueError: ``export.json`` is not valid JSON or not of this export format/version.
    """
    if not osp.isdir(directory):
        raise FileNotFoundError(f'export directory not found: {directory} (made by {TOOL} '
                                'CONFIG CHECKPOINT OUT)')
    path = osp.join(directory, META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found: {directory} is not a complete export of '
                                f'{TOOL} (export.json is written last; an interrupted export or '
                                'copy has none): export again or copy the whole directory')
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f'{path} is not valid JSON ({error}): truncated or corrupt?') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        found = meta.get('format') if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f'{path} is not the export.json of {TOOL} (format {found!r}, expected '
                         f'{FORMAT!r})')
    if meta.get('version') != EXPORT_VERSION:
        raise ValueError(f'{path} is an export of format version {meta.get("version")!r}; this '
                         f'mmcora reads version {EXPORT_VERSION}: export again with it')
    return meta


def check_export(directory: str) -> dict:
    """Check that an export directory holds every file its ``export.json`` lists, whole.

    Sizes are compared, not hashes: cheap for a 7B LLaVA, and what an interrupted copy or a
    file replaced by another export changes.

    Args:
        directory (str): The export directory.

    Returns:
        dict: The parsed ``export.json``.

    Raises:
        FileNotFoundError: ``export.json`` or a file it lists is missing (named).
        ValueError: A file has another size than at export time (named), or ``export.json``
            is unreadable.
    """
    meta = read_export_meta(directory)
    for name, size in sorted(meta.get('files', {}).items()):
        path = osp.join(directory, name)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} is missing from the export {directory} (its '
                                    f'{META_FILE} lists it): copy the whole directory again or '
                                    'export again')
        found = osp.getsize(path)
        if found != size:
            raise ValueError(f'{path} has {found} bytes, {META_FILE} says {size}: the file was '
                             'cut short or changed after the export; copy the whole directory '
                             'again or export again')
    return meta


def export_dir_of(cfg: Config) -> Optional[str]:
    """The export directory an exported config names, or None for other configs.

    Args:
        cfg (Config): A loaded config.

    Returns:
        str | None: The directory (``{{ fileDirname }}`` already replaced by mmengine).
    """
    export = cfg.get(EXPORT_KEY)
    return None if not export else export.get('dir')


def load_config(path: Union[str, Config]) -> Tuple[Config, Optional[str]]:
    """Read a config file or an export directory, the export checked first.

    Args:
        path (str | Config): A config file, an exported ``OUT/config.py``, an export
            directory ``OUT`` (its ``config.py`` is read), or a loaded config.

    Returns:
        tuple[Config, str | None]: The config and, for an export, its directory.

    Raises:
        FileNotFoundError: See :func:`check_export`.
        ValueError: See :func:`check_export`.
    """
    if isinstance(path, str) and osp.isdir(path):
        check_export(path)
        cfg = Config.fromfile(osp.join(path, CONFIG_FILE))
        return cfg, export_dir_of(cfg) or path
    cfg = Config.fromfile(path) if isinstance(path, str) else path
    directory = export_dir_of(cfg)
    if directory is not None:
        check_export(directory)
    return cfg, directory
