"""env_cfg.torch_num_threads and OMP_NUM_THREADS decide torch's thread count."""
import pytest


def test_torch_num_threads_from_env_cfg(monkeypatch):
    import torch
    from mmengine.config import Config

    from mmcora.engine import apply_torch_threads
    before = torch.get_num_threads()
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    try:
        apply_torch_threads(Config(dict(env_cfg=dict(torch_num_threads=1))))
        assert torch.get_num_threads() == 1
        monkeypatch.setenv('OMP_NUM_THREADS', '2')
        apply_torch_threads(Config(dict(env_cfg=dict(torch_num_threads=3))))
        assert torch.get_num_threads() == 1  # the environment's explicit choice wins
        apply_torch_threads(Config(dict(env_cfg=dict())))
        with pytest.raises(ValueError, match='env_cfg.torch_num_threads'):
            apply_torch_threads(Config(dict(env_cfg=dict(torch_num_threads=0))))
    finally:
        torch.set_num_threads(before)
