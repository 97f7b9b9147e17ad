"""``tools/train.py --amp``: bf16 autocast where the GPU supports it, fp16 otherwise.

mmseg's ``--amp`` switches ``OptimWrapper`` to ``AmpOptimWrapper`` with dynamic loss scaling
and autocast's default dtype, fp16. mmcora's LLMs run in bf16 (LLaVA-1.5 and Qwen2.5-VL were
trained in it), and fp16 autocast over bf16 weights overflows where bf16 does not; on GPUs
that support bf16 (Ampere and later) ``--amp`` therefore means bf16 autocast. bf16 has fp32's
exponent range, so the loss is not scaled (a static scale of 1: steps with non-finite
gradients are still skipped).
"""
import copy

from mmengine.config import ConfigDict


def amp_optim_wrapper(optim_wrapper: dict, cuda: bool, bf16: bool) -> ConfigDict:
    """The ``optim_wrapper`` config ``--amp`` asks for.

    Args:
        optim_wrapper (dict): The config's ``optim_wrapper``.
        cuda (bool): A GPU is present (``torch.cuda.is_available()``).
        bf16 (bool): It supports bf16 (``torch.cuda.is_bf16_supported()``).

    Returns:
        ConfigDict: ``AmpOptimWrapper`` with ``dtype='bfloat16'`` and ``loss_scale=1.0`` when
        ``bf16``, else mmseg's fp16 with ``loss_scale='dynamic'``; a config that already uses
        ``AmpOptimWrapper`` unchanged.

    Raises:
        SystemExit: No GPU (``AmpOptimWrapper`` does not run on the CPU).
        ValueError: Another wrapper type than ``OptimWrapper`` (named).
    """
    if not cuda:
        raise SystemExit("--amp needs a GPU: mmengine's AmpOptimWrapper does not run on CPU")
    wrapper = ConfigDict(copy.deepcopy(dict(optim_wrapper)))
    kind = wrapper.get('type', 'OptimWrapper')
    if kind == 'AmpOptimWrapper':
        return wrapper
    if kind != 'OptimWrapper':
        raise ValueError(f'--amp turns optim_wrapper.type OptimWrapper into AmpOptimWrapper, '
                         f'but the config has {kind!r}')
    wrapper.type = 'AmpOptimWrapper'
    if bf16:
        wrapper.update(dtype='bfloat16', loss_scale=1.0)
    else:
        wrapper.loss_scale = 'dynamic'
    return wrapper
