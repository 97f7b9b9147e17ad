"""FSDP for CORA: the auto-wrap policy of mmcora's FSDP configs (``configs/_base_/schedules/
cora_fsdp.py``), registered in mmengine's ``FUNCTIONS`` so a config names it, and the strategy
they use (:class:`CORAFSDPStrategy`: mmengine's, resumable on current torch).

Each transformer block (LLaVA's LLaMA decoder layers and CLIP encoder layers, SAM's ViT
blocks) becomes its own FSDP unit: its parameters are gathered only while it runs, so a rank
holds one block's full weights at a time besides its shard of everything. What is left (the
token embeddings, the LM head, the heads, SAM's decoder) forms the root unit.
"""
from typing import Set, Type

from mmengine._strategy import FSDPStrategy
from mmengine.registry import FUNCTIONS, STRATEGIES
from torch import nn


def block_classes() -> Set[Type[nn.Module]]:
    """The transformer block classes that become FSDP units."""
    from segment_anything.modeling.image_encoder import Block
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    return {LlamaDecoderLayer, CLIPEncoderLayer, Block}


@FUNCTIONS.register_module()
def cora_fsdp_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP's auto-wrap callback: wrap every module of :func:`block_classes`.

    Args:
        module (nn.Module): The module FSDP asks about.
        recurse (bool): Whether FSDP asks to descend into it (always yes) or to wrap it.
        nonwrapped_numel (int): Parameters not yet wrapped under it (unused).

    Returns:
        bool: Descend (``recurse``) or wrap this module.
    """
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    return transformer_auto_wrap_policy(
        module, recurse, nonwrapped_numel, transformer_layer_cls=block_classes())


@STRATEGIES.register_module()
class CORAFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` with the optimizer-state load of the torch it runs on.

    mmengine 0.10.7 calls ``FSDP.optim_state_dict_to_load(state_dict, model, optimizer)``, the
    argument order of torch 2.0; torch 2.1 and later take ``(model, optim, optim_state_dict)``,
    so every ``--resume`` of an FSDP run failed with ``unhashable type: 'dict'``. Everything
    else is mmengine's.
    """

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load a (full) optimizer state dict into the sharded optimizer.

        Args:
            state_dict (dict): The optimizer state as saved under ``FULL_STATE_DICT``.
        """
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        optimizer = self.optim_wrapper.optimizer
        self.optim_wrapper.load_state_dict(
            FSDP.optim_state_dict_to_load(
                model=self.model, optim=optimizer, optim_state_dict=state_dict))
