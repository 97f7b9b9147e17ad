"""Shared fixtures: a small toy city generated once per test session."""
import os
import os.path as osp
import socket
import subprocess

import pytest

from mmcora.datasets import ToyCitySpec, generate_toy_city

SMALL_TOY_CITY = dict(num_train=30, num_val=6, height=128, width=256, seed=0)


@pytest.fixture(scope='session')
def toy_city_spec() -> dict:
    return dict(SMALL_TOY_CITY)


@pytest.fixture(scope='session')
def toy_city_root(tmp_path_factory) -> str:
    """Root of a 30-train / 6-val toy city (read-only for tests)."""
    root = str(tmp_path_factory.mktemp('data') / 'toy_city')
    generate_toy_city(root, ToyCitySpec(**SMALL_TOY_CITY))
    return root


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY_CONFIG = os.path.join(REPO, 'configs', 'toy', 'fcn_r18-tiny_toy-city-1-30.py')
CORA_TOY_CONFIG = os.path.join(REPO, 'configs', 'cora', 'toy-city_1-30_tiny.py')


@pytest.fixture(scope='session')
def small_toy_config(tmp_path_factory, toy_city_root) -> str:
    """The toy FCN config on the small toy city, with a 2-iteration rhythm and no workers."""
    path = tmp_path_factory.mktemp('configs') / 'small_toy.py'
    loader = ("dict(num_workers=0, persistent_workers=False, batch_size={bs}, "
              "dataset=dict(data_root={root!r}, toy_city={spec!r}))")
    path.write_text('\n'.join([
        f'_base_ = [{TOY_CONFIG!r}]',
        f"train_dataloader = {loader.format(bs=2, root=toy_city_root, spec=SMALL_TOY_CITY)}",
        f"val_dataloader = {loader.format(bs=1, root=toy_city_root, spec=SMALL_TOY_CITY)}",
        'test_dataloader = val_dataloader',
        "train_cfg = dict(max_iters=4, val_interval=2)",
        "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))",
    ]) + '\n')
    return str(path)


def run_tool(args: list, env: dict = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command from the repository root; fail with its output if it fails."""
    full_env = {**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})}
    result = subprocess.run(
        args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, args))} exited {result.returncode}\n'
                             f'--- stdout ---\n{result.stdout[-6000:]}\n'
                             f'--- stderr ---\n{result.stderr[-6000:]}')
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def inferencer_cfg(tmp_path_factory):
    """The toy CORA config with a session-private tiny LLaVA and random (plumbing) weights."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'cora', 'toy-city_1-30_tiny.py'))
    cfg.model.mllm.pretrained = str(tmp_path_factory.mktemp('m') / 'tiny-llava')
    cfg.model.sam.toy_pretrain = None  # plumbing: random weights, no foundation cache
    cfg.model.mllm.toy_pretrain = None
    return cfg


@pytest.fixture(scope='session')
def inferencer(inferencer_cfg):
    """ReasoningSegInferencer of the toy CORA config (:func:`inferencer_cfg`)."""
    from mmcora.apis import ReasoningSegInferencer
    return ReasoningSegInferencer(inferencer_cfg)


@pytest.fixture(scope='session')
def qwen_dir(tmp_path_factory) -> str:
    """A tiny random-weight Qwen2.5-VL directory (Seg-Zero's reasoner), written once."""
    from mmcora.models.segzero import ensure_tiny_qwen
    return ensure_tiny_qwen(str(tmp_path_factory.mktemp('qwen') / 'tiny-qwen'))


@pytest.fixture(scope='session')
def sam2_dir(tmp_path_factory) -> str:
    """A tiny random-weight SAM 2 directory (transformers format), written once."""
    from mmcora.models.segzero import ensure_tiny_sam2
    return ensure_tiny_sam2(str(tmp_path_factory.mktemp('sam2') / 'tiny-sam2'))


def load_tool(path: str):
    """Import a script of tools/ (``'tools/export_hf.py'``) as a module, to call its main()."""
    import importlib.util
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def cora_export(tmp_path_factory, toy_city_root) -> dict:
    """A tiny CORA as training leaves it, its trainable-only checkpoint and its export.

    The config is the toy CORA on the session's toy city, with the tiny LLaVA written
    offline and SAM's base weights read from a file (as a real SAM's are: random tiny ones
    here). Every trained weight is moved off its initial value, LoRA's zero-initialised B
    included, so that merging the LoRA changes the LLaVA. The checkpoint is saved as the CORA
    configs save it (``TrainableCheckpointHook``) and exported with ``tools/export_hf.py``.

    Returns:
        dict: ``config``, ``checkpoint``, ``out`` (paths) and ``model`` (the source model,
        its LoRA unmerged).
    """
    from types import SimpleNamespace

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import weights_to_cpu
    from mmseg.registry import MODELS

    from mmcora.engine import TrainableCheckpointHook
    from mmcora.models.sam import SAMWrapper
    root = tmp_path_factory.mktemp('export')
    sam_file = root / 'sam_tiny.pth'
    with torch.random.fork_rng():
        torch.manual_seed(1)
        torch.save(
            SAMWrapper(tiny=dict(img_size=256, patch_size=8, window_size=8)).state_dict(), sam_file)
    loader = (f'dict(num_workers=0, persistent_workers=False, dataset=dict('
              f'data_root={toy_city_root!r}, toy_city={SMALL_TOY_CITY!r}))')
    config = root / 'cora_export_source.py'
    config.write_text('\n'.join([
        f'_base_ = [{CORA_TOY_CONFIG!r}]',
        f'model = dict(mllm=dict(pretrained={str(root / "tiny-llava")!r}, toy_pretrain=None), '
        f'sam=dict(toy_pretrain=None, checkpoint={str(sam_file)!r}))',
        f'train_dataloader = {loader}', f'val_dataloader = {loader}',
        'test_dataloader = val_dataloader'
    ]) + '\n')
    init_default_scope('mmseg')
    with torch.random.fork_rng():  # the heads' random initialisation leaves the RNG as it was
        model = MODELS.build(Config.fromfile(str(config)).model).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # "training"
        for name, param in model.named_parameters():
            if param.requires_grad:
                scale = 0.05 if 'lora_B' in name else 0.02
                param.add_(torch.randn(param.shape, generator=generator) * scale)
    checkpoint = dict(meta=dict(iter=4), state_dict=weights_to_cpu(model.state_dict()))
    TrainableCheckpointHook().before_save_checkpoint(SimpleNamespace(model=model), checkpoint)
    checkpoint_file = root / 'iter_4.pth'
    torch.save(checkpoint, checkpoint_file)
    out = root / 'exported'
    load_tool('tools/export_hf.py').main([str(config), str(checkpoint_file), str(out)])
    return dict(config=str(config), checkpoint=str(checkpoint_file), out=str(out), model=model)
