"""Shared fixtures: a small toy city generated once per test session."""
import os
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
