"""mmcora: CORA reasoning segmentation as an mmsegmentation 1.x extension.

Importing the package registers its components in mmseg's registries (configs load it with
``custom_imports=dict(imports=['mmcora'], allow_failed_imports=False)``) and routes mmengine's
checkpoint loading through :func:`mmcora.engine.load_checkpoint_file`, which makes resuming
work on torch >= 2.6 without unpickling untrusted files.
"""
from . import datasets, evaluation, models, visualization  # noqa: F401,E402  registers
from .engine import install_checkpoint_loaders
from .version import __version__, version_info

install_checkpoint_loaders()

__all__ = ['__version__', 'version_info']
