"""Export a trained CORA model in a deployable form (``tools/export_hf.py CONFIG CKPT OUT``).

The model is built from CONFIG and CKPT exactly as ``tools/test.py`` builds it (a
trainable-only checkpoint gets its base weights from the config, checked). Then peft merges
the LoRA of the language model into its base weights (each injected layer's own ``merge``,
and its base layer put back), the LLaVA is cast to the model's dtype and saved with
``save_pretrained``, and everything else but SAM's frozen image encoder goes to
``heads.safetensors`` (layout: :mod:`.export_dir`). The heads file records the names and
fingerprints of the weights it leaves out (``trainable_only``, as a trainable-only checkpoint
does), so loading it checks that the LLaVA and SAM beside it are the exported ones.

Everything is written to a temporary directory next to OUT, ``export.json`` last, and moved
into place at the end: an interrupted export never looks like a complete one.
"""
import copy
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import MODELS

from ..engine import restore_base_weights
from ..engine.checkpoint_fit import load_state_dict_checked, state_dict_of
from ..engine.safe_checkpoint import save_safetensors_checkpoint
from ..engine.trainable_checkpoint import META_KEY, fingerprints
from ..utils import file_sha256
from ..version import __version__
from .export_dir import (CONFIG_FILE, DIR_VAR, EXPORT_KEY, EXPORT_VERSION, FORMAT, HEADS_FILE,
                         LLAVA_DIR, META_FILE, SAM_FILE, TOOL, read_export_meta)

EXPORTABLE = ('CORASegmentor', 'SemiCORASegmentor')
# SemiCORASegmentor's training-only state and options: the export is a CORASegmentor
SEMI_MODULES = ('token_bank', 'consistency_snapshot', 'loss_pseudo', 'loss_token')
SEMI_KEYS = ('loss_pseudo', 'loss_token', 'token_bank', 'unlabeled_weight')
SEMI_HOOKS = ('TokenBankHook', )  # needs the token bank
BASE_PREFIXES = ('mllm.', 'sam.image_encoder.')  # what heads.safetensors leaves out
PROCESSOR_FILES = ('processor_config.json', 'chat_template.json', 'chat_template.jinja')


def merge_lora(model: torch.nn.Module) -> List[str]:
    """Merge every peft adapter layer of ``model`` into its base layer and put that back.

    Uses peft's own layer API, as ``merge_and_unload`` does: the layer's
    ``unload_and_optionally_merge_module`` where it has one, else ``merge(safe_merge=True)``
    (which refuses NaN/inf results) and ``get_base_layer()``.

    Args:
        model (torch.nn.Module): A model that ``peft.inject_adapter_in_model`` adapted; changed
            in place.

    Returns:
        list[str]: The names of the merged layers (empty without adapters).
    """
    from peft.tuners.tuners_utils import BaseTunerLayer
    layers = [name for name, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    outer = [n for n in layers if not any(n.startswith(o + '.') for o in layers if o != n)]
    for name in outer:
        layer = model.get_submodule(name)
        parent_name, _, child = name.rpartition('.')
        if hasattr(layer, 'unload_and_optionally_merge_module'):
            base = layer.unload_and_optionally_merge_module(
                merge=True, safe_merge=True, adapter_names=None)
        else:
            layer.merge(safe_merge=True)
            base = layer.get_base_layer()
        setattr(model.get_submodule(parent_name), child, base)
    if hasattr(model, 'peft_config'):  # peft's record of the adapter, gone with it
        del model.peft_config
    return outer


def build_source(cfg: Config, checkpoint: str) -> Tuple[torch.nn.Module, bool]:
    """The model of ``cfg`` with ``checkpoint`` loaded, as ``tools/test.py`` would have it.

    The config's ``randomness.seed`` is set first, as mmengine's runner does, so a randomly
    initialised base (a tiny model) is the one a trainable-only checkpoint was trained on.

    Args:
        cfg (Config): The training config.
        checkpoint (str): The checkpoint file (full or trainable-only).

    Returns:
        tuple[torch.nn.Module, bool]: The model (eval mode) and whether the checkpoint held
        only the trained weights.

    Raises:
        ValueError: The model is not a CORA segmentor.
        CheckpointMismatchError: The checkpoint was made with another config (named).
    """
    model_type = cfg.model.get('type')
    if model_type not in EXPORTABLE:
        raise ValueError(f'{TOOL} exports {" and ".join(EXPORTABLE)} models; the config\'s model '
                         f'is {model_type!r}')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is not None:
        set_random_seed(randomness['seed'], deterministic=randomness.get('deterministic', False))
    loaded = _load_checkpoint(checkpoint, map_location='cpu')  # a bad file fails before the build
    model = MODELS.build(cfg.model)
    restore_base_weights(model, loaded, checkpoint)  # a trainable-only checkpoint, checked
    load_state_dict_checked(model, state_dict_of(loaded, checkpoint), checkpoint)
    return model.eval(), bool((loaded.get('meta') or {}).get(META_KEY))


def exported_config(cfg: Config, model: torch.nn.Module, own_sam: bool) -> Config:
    """The config that builds the exported model from the export directory.

    Args:
        cfg (Config): The source config.
        model (torch.nn.Module): The source model (for its resolved tokenization and dtype).
        own_sam (bool): SAM's weights are the export's ``sam.pth`` (the source had none).

    Returns:
        Config: A copy of ``cfg``: a ``CORASegmentor`` whose LLaVA is ``OUT/llava`` (no LoRA,
        nothing trained, the same tokenization and dtype), SAM as in the source (or from
        ``OUT/sam.pth``), ``load_from`` the heads and the :data:`EXPORT_KEY` marker.
    """
    cfg = copy.deepcopy(cfg)
    spec = cfg.model
    if spec.type == 'SemiCORASegmentor':
        spec.type = 'CORASegmentor'
        for key in SEMI_KEYS:
            spec.pop(key, None)
        cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] not in SEMI_HOOKS]
    spec.mllm.update(
        pretrained=f'{DIR_VAR}/{LLAVA_DIR}',
        tiny=None,
        toy_pretrain=None,
        lora=None,
        tokenization=model.mllm.tokenization,
        dtype=str(model.mllm.compute_dtype).replace('torch.', ''),
        # the saved rows are the trained ones; nothing of the export trains unless asked
        train_token_embeddings=False,
        gradient_checkpointing=False)
    if own_sam:
        spec.sam.update(checkpoint=f'{DIR_VAR}/{SAM_FILE}', toy_pretrain=None)
    cfg.load_from = f'{DIR_VAR}/{HEADS_FILE}'
    cfg.resume = False
    cfg[EXPORT_KEY] = dict(dir=DIR_VAR, version=EXPORT_VERSION)
    return cfg


def _check_out(out: str, source: dict, overwrite: bool) -> None:
    """Refuse an OUT that holds anything but nothing or an export of the same source."""
    if not osp.exists(out):
        return
    if not osp.isdir(out):
        raise FileExistsError(f'OUT {out} is a file: give a directory to export to')
    if not os.listdir(out):
        return
    try:
        old = read_export_meta(out).get('source', {})
    except (FileNotFoundError, ValueError):
        raise FileExistsError(f'OUT {out} is not empty and holds no readable {META_FILE} of '
                              f'{TOOL}: nothing there is replaced; choose another OUT') from None
    same = all(old.get(k) == source[k] for k in ('checkpoint_sha256', 'config_sha256'))
    if not (same or overwrite):
        raise FileExistsError(
            f'OUT {out} already holds another export ({osp.join(out, META_FILE)}: of '
            f'{old.get("checkpoint")} (sha256 {str(old.get("checkpoint_sha256"))[:12]}...) with '
            f'{old.get("config")}), not of {source["checkpoint"]} (sha256 '
            f'{source["checkpoint_sha256"][:12]}...) with {source["config"]}: choose another '
            'OUT, or pass --overwrite to replace it')


def _save_llava(mllm: torch.nn.Module, directory: str) -> None:
    """``save_pretrained`` of the merged LLaVA, its tokenizer and CLIP image processor."""
    from transformers import CLIPImageProcessor
    source = mllm.model.name_or_path
    mllm.model.save_pretrained(directory)
    mllm.tokenizer.save_pretrained(directory)
    CLIPImageProcessor.from_pretrained(source).save_pretrained(directory)
    for name in PROCESSOR_FILES:  # a llava-hf processor's settings, when the source has them
        if osp.isfile(osp.join(source, name)):
            shutil.copy(osp.join(source, name), osp.join(directory, name))


def _write(model: torch.nn.Module, cfg: Config, directory: str, own_sam: bool,
           dropped: List[str]) -> None:
    """Write the export's files (all but ``export.json``) into ``directory``."""
    _save_llava(model.mllm, osp.join(directory, LLAVA_DIR))
    if own_sam:
        torch.save({
            k: v.cpu()
            for k, v in model.sam.state_dict().items()
        }, osp.join(directory, SAM_FILE))
    state = model.state_dict()
    base = sorted(k for k in state if k.startswith(BASE_PREFIXES))
    heads = {k: v for k, v in state.items() if k not in base and k.split('.')[0] not in dropped}
    meta = {META_KEY: dict(omitted=base, fingerprints=fingerprints(state, base))}
    save_safetensors_checkpoint(heads, meta, osp.join(directory, HEADS_FILE))
    text = exported_config(cfg, model, own_sam).pretty_text
    with open(osp.join(directory, CONFIG_FILE), 'w', encoding='utf-8') as f:
        f.write(f'# Made by {TOOL}; {DIR_VAR} is this file\'s directory (mmengine fills it in).\n'
                f'# Load it with tools/test.py OUT or ReasoningSegInferencer(OUT).\n{text}')


def export_cora(config: str,
                checkpoint: str,
                out: str,
                overwrite: bool = False,
                cfg_options: Optional[dict] = None) -> dict:
    """Export a CORA model trained with ``config`` (weights ``checkpoint``) to ``out``.

    Args:
        config (str): The training config file.
        checkpoint (str): Its checkpoint, full or trainable-only.
        out (str): The export directory; it must not exist, be empty, or hold an export of
            the same config and checkpoint (which is replaced), unless ``overwrite``.
        overwrite (bool): Replace an export of another source at ``out``.
        cfg_options (dict, optional): Overrides merged into the config (``--cfg-options``).

    Returns:
        dict: What ``export.json`` holds.

    Raises:
        FileNotFoundError: ``config`` or ``checkpoint`` does not exist.
        FileExistsError: ``out`` holds something else (see :func:`_check_out`).
        RuntimeError: ``checkpoint`` is truncated or corrupt (named).
        CheckpointMismatchError: ``checkpoint`` was made with another config (named).
    """
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    source = dict(
        config=osp.abspath(config),
        config_sha256=hashlib.sha256(cfg.pretty_text.encode()).hexdigest(),
        checkpoint=osp.abspath(checkpoint),
        checkpoint_sha256=file_sha256(checkpoint))
    out = osp.abspath(out)
    _check_out(out, source, overwrite)
    model, source['trainable_only'] = build_source(cfg, checkpoint)
    merged = merge_lora(model.mllm.model)
    model.mllm.model.to(model.mllm.compute_dtype)  # what save_pretrained writes and reloads
    sam_cfg = cfg.model.sam
    own_sam = sam_cfg.get('checkpoint') is None and sam_cfg.get('toy_pretrain') is None
    dropped = [n for n, _ in model.named_children() if n in SEMI_MODULES]
    lora = cfg.model.mllm.get('lora')
    meta = dict(
        format=FORMAT,
        version=EXPORT_VERSION,
        mmcora_version=__version__,
        source=dict(source, model_type=cfg.model.type),
        merged=dict(
            adapter_layers=len(merged),  # LoRA layers, and trainable token rows if any
            layers=merged,
            lora=None if lora is None else dict(lora),
            token_rows='embed_tokens and lm_head as trained, in llava/'),
        dropped=dropped,
        sam='sam.pth (the source SAM had no base file)' if own_sam else 'as in the source config')
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.partial-', dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp's 0700 would keep the export from others
    try:
        _write(model, cfg, work, own_sam, dropped)
        meta['files'] = _sizes(work)
        with open(osp.join(work, META_FILE), 'w', encoding='utf-8') as f:
            json.dump(meta, f, indent=2)
        _move_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return meta


def _sizes(directory: str) -> Dict[str, int]:
    """Relative path -> size of every file under ``directory``."""
    sizes = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = osp.join(root, name)
            sizes[osp.relpath(path, directory)] = osp.getsize(path)
    return dict(sorted(sizes.items()))


def _move_into_place(work: str, out: str) -> None:
    """Rename the finished ``work`` directory to ``out``, replacing what is there."""
    if osp.isdir(out) and not os.listdir(out):
        os.rmdir(out)
    old = None
    if osp.exists(out):
        old = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.old-', dir=osp.dirname(out))
        os.rmdir(old)
        os.rename(out, old)
    os.rename(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
