"""The resume file of an interrupted foundation pretraining: written atomically, read safely."""
import logging
import os
import os.path as osp
import pickle
from typing import Optional

import torch
from mmengine.logging import print_log


def read_resume_state(resume_file: Optional[str]) -> Optional[dict]:
    """The saved state of an interrupted run; None (start afresh) if absent or unreadable."""
    if resume_file is None or not osp.isfile(resume_file):
        return None
    try:
        return torch.load(resume_file, map_location='cpu', weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print_log(
            f'{resume_file} is unreadable ({reason}); pretraining starts from step 0',
            logger='current',
            level=logging.WARNING)
        return None


def write_resume_state(resume_file: str, state: dict) -> None:
    """Write ``state`` next to ``resume_file`` and move it in place (a crash leaves the old)."""
    tmp = resume_file + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, resume_file)
