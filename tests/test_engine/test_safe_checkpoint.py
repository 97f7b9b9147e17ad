"""Checkpoint loading on torch >= 2.6: own checkpoints resume, untrusted pickles are refused."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner

import mmcora  # noqa: F401  installs the loaders
from mmcora.engine import UnsafeCheckpointError


class TinyRegressor(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        inputs, targets = torch.stack(inputs), torch.stack(targets)
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - targets)**2).mean())
        return out


def _runner(work_dir: str, max_iters: int, resume: bool) -> Runner:
    data = [dict(inputs=torch.randn(2), targets=torch.randn(1)) for _ in range(8)]
    return Runner(
        model=TinyRegressor(),
        work_dir=work_dir,
        resume=resume,
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine',
        experiment_name=f'compat_{max_iters}_{resume}')


class WritesMarker:
    """Unpickling this touches a file: stands for arbitrary code in a malicious checkpoint."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_resume_from_own_checkpoint(tmp_path):
    first = _runner(str(tmp_path), max_iters=4, resume=False)
    first.train()
    weights = first.model.linear.weight.detach().clone()
    assert osp.isfile(tmp_path / 'iter_4.pth')
    second = _runner(str(tmp_path), max_iters=6, resume=True)
    second.train()
    assert second.iter == 6
    assert osp.isfile(tmp_path / 'iter_6.pth')
    # the resumed run started from iter 4's weights and message hub, not from scratch
    resumed = torch.load(tmp_path / 'iter_6.pth', weights_only=False)
    assert resumed['meta']['iter'] == 6
    assert not torch.equal(resumed['state_dict']['linear.weight'], weights)
    # the message hub came back with the loss history of the first 4 iterations
    assert len(second.message_hub.get_scalar('train/loss').data[0]) == 6


def test_plain_state_dict_loads(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, path)
    assert torch.equal(
        CheckpointLoader.load_checkpoint(str(path))['state_dict']['w'], torch.ones(2))


def test_arbitrary_pickle_refused_unless_trusted(tmp_path, monkeypatch):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {}, 'payload': WritesMarker(str(marker))}, path)
    monkeypatch.delenv('MMCORA_TRUST_CHECKPOINTS', raising=False)
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(str(path))
    message = str(error.value)
    assert str(path) in message and 'MMCORA_TRUST_CHECKPOINTS=1' in message
    assert 'io.open' in message  # the class it names
    assert not marker.exists()
    monkeypatch.setenv('MMCORA_TRUST_CHECKPOINTS', '1')
    CheckpointLoader.load_checkpoint(str(path))
    assert marker.exists()


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nowhere.pth'))


def test_checkpoint_of_the_other_numpy_major_loads(tmp_path):
    """numpy 2 pickles arrays as numpy._core.multiarray, numpy 1 as numpy.core.multiarray; a
    checkpoint saved under either loads under the installed one (requirements: numpy>=1.24)."""
    from mmcora.engine import load_checkpoint_file
    meta = dict(array=np.arange(3), scalar=np.float64(2.5))
    saved = tmp_path / 'saved.pth'  # the legacy format keeps the pickle's module names in clear
    torch.save(dict(meta=meta), saved, _use_new_zipfile_serialization=False, pickle_protocol=2)
    data = saved.read_bytes()
    names = (b'numpy._core.multiarray', b'numpy.core.multiarray')
    here, other = names if names[0] in data else names[::-1]
    assert here in data and other not in data
    moved = tmp_path / 'other_numpy.pth'
    moved.write_bytes(data.replace(here, other))
    for path in (saved, moved):
        loaded = load_checkpoint_file(str(path))['meta']
        assert np.array_equal(loaded['array'], meta['array']) and loaded['scalar'] == 2.5
