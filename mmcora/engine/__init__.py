from .compat import (UnsafeCheckpointError, install_checkpoint_loaders, load_checkpoint_file,
                     setup_cpu_distributed)

__all__ = [
    'UnsafeCheckpointError', 'install_checkpoint_loaders', 'load_checkpoint_file',
    'setup_cpu_distributed'
]
