"""List files of scene names, one per line, as mmseg datasets read them as ``ann_file``."""
import os
import os.path as osp
from typing import Iterable, List


def write_name_list(path: str, names: Iterable[str]) -> None:
    """Write one name per line (with a final newline), creating the folder.

    Args:
        path (str): The list file.
        names (Iterable[str]): Scene names, relative to the dataset's ``data_prefix``.
    """
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(f'{name}\n' for name in names)


def read_name_list(path: str) -> List[str]:
    """Read a list file, skipping blank lines.

    Args:
        path (str): The list file.

    Returns:
        list[str]: The names, stripped, in file order.

    Raises:
        FileNotFoundError: naming the list file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'split list not found: {path}')
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]
