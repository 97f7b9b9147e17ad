# FSDP for CORA (mmengine FlexibleRunner + FSDPStrategy): parameters, gradients and AdamW state
# sharded over the ranks, each transformer block (LLaMA decoder layer, CLIP encoder layer, SAM
# ViT block) its own unit, gathered only while it runs (mmcora.engine.fsdp). Checkpoints are
# gathered to rank 0 as one ordinary file (FULL_STATE_DICT, offloaded to the CPU), so
# tools/test.py, the inferencer, --resume and tools/export_hf.py read them as any other; the
# CORA runtime's TrainableCheckpointHook still leaves the frozen base out of them.
# tools/train.py shards on the CPU with gloo when there is no CUDA (tests/test_tools/test_fsdp.py).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='CORAFSDPStrategy',  # mmengine's FSDPStrategy, resumable on torch >= 2.1
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        use_orig_params=True,  # LoRA and frozen weights share units: requires_grad differs
        auto_wrap_policy='cora_fsdp_wrap_policy'),
    state_dict_cfg=dict(
        state_dict_type='FULL_STATE_DICT',
        state_dict_config=dict(type='FullStateDictConfig', offload_to_cpu=True, rank0_only=True),
        optim_state_dict_config=dict(
            type='FullOptimStateDictConfig', offload_to_cpu=True, rank0_only=True)))
