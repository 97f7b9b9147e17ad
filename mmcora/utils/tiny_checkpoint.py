"""Write a tiny model directory once, atomically, keyed by its manifest.

Tests and the toy build tiny random-weight models in the formats real checkpoints ship in
(Hugging Face ``save_pretrained`` directories). Each writer leaves a manifest (its spec and
format version) in the directory; a later call with the same spec reuses it, another spec
is refused rather than silently overwritten, and concurrent ranks never see half a directory.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict

from mmengine.logging import print_log


def ensure_tiny_checkpoint(path: str, manifest: str, wanted: Dict, write: Callable[[str], None],
                           what: str) -> str:
    """Make ``path`` hold the tiny model ``wanted`` describes, writing it if absent.

    Args:
        path (str): The directory.
        manifest (str): Name of the manifest file inside it.
        wanted (dict): The complete manifest (spec and format version).
        write (Callable[[str], None]): Writes the model, then the manifest, into a directory.
        what (str): The model's name for messages ("tiny LLaVA").

    Returns:
        str: ``path``.

    Raises:
        FileExistsError: ``path`` holds another spec, or something not written by mmcora.
    """
    manifest_path = osp.join(path, manifest)
    if osp.isfile(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            found = json.load(f)
        if found == wanted:
            return path
        raise FileExistsError(f'{path} holds a {what} with other parameters ({found}); '
                              'remove it or choose another path')
    if osp.exists(path):
        raise FileExistsError(f'{path} exists but is not a {what} made by mmcora')
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.tiny-', dir=parent)
    try:
        write(tmp)
        try:
            os.rename(tmp, path)
        except OSError:  # another rank renamed its copy first
            if not osp.isfile(manifest_path):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_log(f'wrote a {what} with random weights to {path}', logger='current')
    return path


def write_manifest(folder: str, manifest: str, content: Dict) -> None:
    """Write the manifest (last, so a directory with one is complete)."""
    with open(osp.join(folder, manifest), 'w', encoding='utf-8') as f:
        json.dump(content, f, indent=2)
