"""Memory plan of a config: parameters, checkpoint size and per-GPU memory, nothing allocated.

Builds the config's model on PyTorch's meta device, with the architecture its files describe
(``model.mllm.pretrained``'s ``config.json`` and tokenizer, SAM's ``model_type``) and no weights
read, then counts what each part costs:

* parameters: total, trainable (``requires_grad``) and frozen, with their bytes in their dtypes;
* checkpoint: the state dict plus AdamW's two moments per trainable parameter, in full and
  trainable-only (``TrainableCheckpointHook``, the CORA default) form;
* per GPU, for ``--gpus`` GPUs: weights, gradients and optimizer state under DDP (everything
  replicated), DeepSpeed ZeRO-2 (gradients and optimizer state sharded, fp32 master copies of
  the trainable bf16/fp16 parameters too) and FSDP full sharding (everything sharded).
  Activations, buffers of the data pipeline and the CUDA context come on top.

    python tools/analysis/model_size.py configs/cora/cityscapes_1-30.py --gpus 4 \\
        --cfg-options model.mllm.pretrained=/path/llava-1.5-7b-hf
"""
import argparse
from typing import Dict

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmcora  # noqa: F401  registers mmcora's components

GB = 1e9


def meta_model(cfg: Config) -> torch.nn.Module:
    """The config's model on the meta device, built from the architecture only.

    Args:
        cfg (Config): A CORA config (``model.mllm`` a ``LlavaMLLM``, ``model.sam`` a
            ``SAMWrapper``).

    Returns:
        torch.nn.Module: The model; every tensor is on ``meta``.
    """
    init_default_scope('mmseg')
    model_cfg = cfg.model.copy()
    if 'mllm' in model_cfg:
        model_cfg.mllm = dict(model_cfg.mllm, load_weights=False)
    if 'sam' in model_cfg:
        model_cfg.sam = dict(model_cfg.sam, checkpoint=None)
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def plan(model: torch.nn.Module, gpus: int) -> Dict[str, float]:
    """Sizes in bytes (and parameter counts) of a built model's training state.

    Args:
        model (torch.nn.Module): The model (any device).
        gpus (int): Data-parallel GPUs the state is sharded over.

    Returns:
        dict[str, float]: ``params``, ``trainable_params``, the byte counts ``weights``,
        ``trainable``, ``frozen``, ``buffers``, ``optimizer``, ``checkpoint_full``,
        ``checkpoint_trainable_only``, and per-GPU ``ddp``, ``zero2``, ``fsdp``.
    """
    params = list(model.named_parameters())
    trainable = [p for _, p in params if p.requires_grad]
    frozen_bytes = sum(p.numel() * p.element_size() for _, p in params if not p.requires_grad)
    trainable_bytes = sum(p.numel() * p.element_size() for p in trainable)
    low_precision = sum(p.numel() for p in trainable if p.dtype in (torch.bfloat16, torch.float16))
    state = model.state_dict()
    param_names = {name for name, _ in params}
    buffer_bytes = sum(t.numel() * t.element_size() for n, t in state.items()
                       if n not in param_names)
    weights = frozen_bytes + trainable_bytes
    optimizer = 2 * trainable_bytes  # AdamW's exp_avg and exp_avg_sq, in the parameter dtype
    master = 4 * low_precision  # ZeRO's fp32 copies of bf16/fp16 trainable parameters
    return dict(
        params=sum(p.numel() for _, p in params),
        trainable_params=sum(p.numel() for p in trainable),
        weights=weights,
        trainable=trainable_bytes,
        frozen=frozen_bytes,
        buffers=buffer_bytes,
        optimizer=optimizer,
        checkpoint_full=weights + buffer_bytes + optimizer,
        checkpoint_trainable_only=trainable_bytes + buffer_bytes + optimizer,
        ddp=weights + trainable_bytes + optimizer,
        zero2=weights + (trainable_bytes + optimizer + master) / gpus,
        fsdp=(weights + trainable_bytes + optimizer) / gpus)


def report(sizes: Dict[str, float], gpus: int) -> str:
    """The plan as text (GB = 1e9 bytes)."""
    gb = {k: v / GB for k, v in sizes.items()}
    return '\n'.join([
        f'parameters: {sizes["params"] / 1e9:.3f} B, trainable '
        f'{sizes["trainable_params"] / 1e6:.1f}'
        f' M ({100 * sizes["trainable_params"] / sizes["params"]:.2f} %)',
        f'weights: {gb["weights"]:.2f} GB (frozen {gb["frozen"]:.2f}, trainable '
        f'{gb["trainable"]:.2f}), buffers {gb["buffers"]:.2f} GB, AdamW state '
        f'{gb["optimizer"]:.2f} GB',
        f'checkpoint: full {gb["checkpoint_full"]:.2f} GB, trainable-only '
        f'{gb["checkpoint_trainable_only"]:.2f} GB',
        f'per GPU of {gpus} (weights + gradients + optimizer state, without activations):',
        f'  DDP {gb["ddp"]:.2f} GB | ZeRO-2 {gb["zero2"]:.2f} GB | FSDP {gb["fsdp"]:.2f} GB',
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--gpus', type=int, default=4, help='data-parallel GPUs (default 4)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    args = parser.parse_args()
    if args.gpus < 1:
        raise SystemExit(f'--gpus must be >= 1, got {args.gpus}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'{args.config}')
    print(report(plan(meta_model(cfg), args.gpus), args.gpus))


if __name__ == '__main__':
    main()
