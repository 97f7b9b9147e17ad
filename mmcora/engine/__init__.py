from .compat import (UnsafeCheckpointError, install_checkpoint_loaders, load_checkpoint_file,
                     setup_cpu_distributed)
from .hooks import DataFilesCheckHook

__all__ = [
    'DataFilesCheckHook', 'UnsafeCheckpointError', 'install_checkpoint_loaders',
    'load_checkpoint_file', 'setup_cpu_distributed'
]
