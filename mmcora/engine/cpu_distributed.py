"""Distributed training on machines without CUDA (gloo, CPU DDP) for mmengine 0.10.7.

:func:`setup_cpu_distributed` is called by ``tools/train.py`` and ``tools/test.py`` before the
Runner is built, so ``tools/dist_train.sh CONFIG 2`` runs on a laptop.
"""
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> None:
    """Prepare a ``--launcher pytorch`` run for a machine without CUDA (gloo, CPU DDP, or FSDP
    of a ``FlexibleRunner`` config sharded on the CPU).

    Does nothing when CUDA is available or the launcher is ``none``.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher {launcher!r} needs CUDA here; on CPU use '
                           "--launcher pytorch (tools/dist_train.sh)")
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    # mmengine's init_dist always calls torch.cuda.set_device, which fails without CUDA; a
    # process group that already exists makes Runner.setup_env skip init_dist.
    if not torch_dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        torch_dist.init_process_group(
            'gloo', timeout=timedelta(seconds=timeout) if timeout else None)
    strategy = cfg.get('strategy')
    if cfg.get('runner_type') == 'FlexibleRunner' and strategy is not None:
        from mmengine._strategy import DeepSpeedStrategy, FSDPStrategy
        from mmengine.registry import STRATEGIES
        kind = STRATEGIES.get(strategy.get('type'))
        if isinstance(kind, type) and issubclass(kind, FSDPStrategy):
            # FSDPStrategy passes device_id=LOCAL_RANK (a CUDA device); FSDP shards on the CPU
            # with gloo when given the CPU device
            strategy.setdefault('model_wrapper', dict(type='MMFullyShardedDataParallel'))
            strategy['model_wrapper']['device_id'] = 'cpu'
        elif isinstance(kind, type) and issubclass(kind, DeepSpeedStrategy):
            raise RuntimeError(
                f"strategy {strategy.get('type')!r}: mmcora has no CPU set-up for DeepSpeed "
                "(mmengine 0.10.7's DeepSpeedStrategy imports deepspeed.runtime.fp16.onebit, "
                'which current DeepSpeed lacks); on CPU use the FSDP schedule or DDP')
        return
    # Runner.wrap_model passes device_ids=[LOCAL_RANK], which DDP rejects for CPU modules.
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
