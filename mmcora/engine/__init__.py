from .checkpoint_fit import (CheckpointFitHook, CheckpointMismatchError, load_model_checkpoint,
                             register_checkpoint_fit)
from .cpu_distributed import setup_cpu_distributed
from .fsdp import CORAFSDPStrategy, cora_fsdp_wrap_policy
from .hooks import DataFilesCheckHook
from .precision import amp_optim_wrapper
from .random_state import RandomStateHook
from .safe_checkpoint import UnsafeCheckpointError, install_checkpoint_loaders, load_checkpoint_file
from .stages import CORAStagedTrainLoop
from .threads import apply_torch_threads
from .token_bank_hook import TokenBankHook, gather_rows
from .trainable_checkpoint import TrainableCheckpointHook, restore_base_weights
from .work_dir import resume_checkpoint

__all__ = [
    'amp_optim_wrapper', 'CORAFSDPStrategy', 'cora_fsdp_wrap_policy', 'CheckpointFitHook',
    'CheckpointMismatchError', 'load_model_checkpoint', 'register_checkpoint_fit',
    'CORAStagedTrainLoop', 'DataFilesCheckHook', 'RandomStateHook', 'TokenBankHook', 'gather_rows',
    'TrainableCheckpointHook', 'restore_base_weights', 'UnsafeCheckpointError',
    'apply_torch_threads', 'install_checkpoint_loaders', 'load_checkpoint_file',
    'resume_checkpoint', 'setup_cpu_distributed'
]
