from .compat import (UnsafeCheckpointError, install_checkpoint_loaders, load_checkpoint_file,
                     setup_cpu_distributed)
from .hooks import DataFilesCheckHook
from .threads import apply_torch_threads

__all__ = [
    'DataFilesCheckHook', 'UnsafeCheckpointError', 'apply_torch_threads',
    'install_checkpoint_loaders',
    'load_checkpoint_file', 'setup_cpu_distributed'
]
