"""``--resume`` from a work directory that was moved or copied.

mmengine's ``CheckpointHook`` writes the absolute path of the newest checkpoint into
``<work_dir>/last_checkpoint``, and ``--resume`` reads it back. Once the directory is moved
(another file system, a copied run, a renamed experiment) that path names a file that is not
there, and the run fails or, on shared storage, resumes from the *old* directory's
checkpoint. :func:`resume_checkpoint` reads the file the way mmengine does and, when the path is
gone, takes the checkpoint of the same name inside the work directory itself.
"""
import os.path as osp
from typing import Optional


def resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should load from ``work_dir``, or None to leave it to mmengine.

    Args:
        work_dir (str): The run's work directory.

    Returns:
        str | None: ``<work_dir>/<name>`` when ``last_checkpoint`` names a file outside
        ``work_dir`` (gone, or the original of a copied directory) and a checkpoint of that
        name is in ``work_dir``; None when there is no ``last_checkpoint`` or it names the
        work directory's own file (mmengine's own behaviour applies).

    Raises:
        FileNotFoundError: ``last_checkpoint`` names a file that exists neither where it
            says nor in ``work_dir`` (both paths named).
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        named = f.read().strip()
    if not named:
        return None
    local = osp.join(work_dir, osp.basename(named))
    if osp.isfile(named) and (not osp.isfile(local) or osp.samefile(named, local)):
        return None
    if osp.isfile(local):  # moved, or copied with the original still in place
        return local
    raise FileNotFoundError(f'{marker} names {named}, which does not exist, and {work_dir} has '
                            f'no {osp.basename(named)}: give the checkpoint with '
                            '--cfg-options load_from=PATH --resume, or delete the file to start '
                            'afresh')
