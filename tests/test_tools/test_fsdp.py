"""FSDP through tools/dist_train.sh (2 processes, gloo, sharded on the CPU): the CORA FSDP
schedule's FlexibleRunner trains the tiny CORA with the losses of DDP, writes ordinary
trainable-only checkpoints that --resume continues and tools/test.py scores as FSDP's own
validation did."""
import glob
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from ..conftest import CORA_TOY_CONFIG, REPO, SMALL_TOY_CITY, free_port, run_tool

FSDP = osp.join(REPO, 'configs', '_base_', 'schedules', 'cora_fsdp.py')


def _config(tmp_path, root, fsdp: bool, iters: int = 4) -> str:
    """The tiny CORA on the small toy city. Every weight comes from files (the tiny LLaVA, a
    SAM checkpoint, ``load_from`` for the heads), so DDP and FSDP start alike (FlexibleRunner
    builds the model later than Runner, after other draws of the random generators) and
    tools/test.py rebuilds the frozen base the trainable-only checkpoint was made on."""
    cfg = Config.fromfile(CORA_TOY_CONFIG)
    cfg.model.mllm.update(pretrained=str(tmp_path / 'tiny-llava'), toy_pretrain=None)
    cfg.model.sam.toy_pretrain = None
    if not osp.isfile(tmp_path / 'init.pth'):
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        torch.save(model.sam.state_dict(), tmp_path / 'sam.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), tmp_path / 'init.pth')
    cfg.model.sam.checkpoint = str(tmp_path / 'sam.pth')
    cfg.load_from = str(tmp_path / 'init.pth')
    for split in ('train', 'val'):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=root, toy_city=SMALL_TOY_CITY)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=iters, val_interval=4)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=4, save_best=None)
    cfg.log_processor = dict(window_size=1, by_epoch=False)
    if fsdp:
        fsdp_cfg = Config.fromfile(FSDP)
        cfg.runner_type, cfg.strategy = fsdp_cfg.runner_type, fsdp_cfg.strategy
    path = str(tmp_path / f'{"fsdp" if fsdp else "ddp"}_{iters}.py')
    cfg.dump(path)
    return path


def _scalars(work_dir):
    path = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    return [json.loads(line) for line in open(path)]


def _train(config, work, *extra):
    env = {
        'PYTHON': sys.executable,
        'PORT': str(free_port()),
        'PYTHONPATH': REPO,
        'OMP_NUM_THREADS': '1'
    }
    return run_tool(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work, *extra],
                    env=env,
                    timeout=900)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path')
def test_fsdp_trains_resumes_and_tests_like_ddp(tmp_path, toy_city_root):
    fsdp_work, ddp_work = str(tmp_path / 'fsdp'), str(tmp_path / 'ddp')
    _train(_config(tmp_path, toy_city_root, fsdp=True), fsdp_work)
    _train(_config(tmp_path, toy_city_root, fsdp=False), ddp_work)
    fsdp, ddp = _scalars(fsdp_work), _scalars(ddp_work)
    log = open(sorted(glob.glob(osp.join(fsdp_work, '*', '*.log')))[-1]).read()
    assert 'FullyShardedDataParallel' in log or 'FSDPStrategy' in log
    train = [(r['step'], r['loss']) for r in fsdp if 'loss' in r]
    assert [s for s, _ in train] == [1, 2, 3, 4]
    for (_, a), (_, b) in zip(train, [(r['step'], r['loss']) for r in ddp if 'loss' in r]):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)  # the same optimisation as DDP
    # the checkpoint is one ordinary file, without the frozen base (TrainableCheckpointHook)
    checkpoint = torch.load(
        osp.join(fsdp_work, 'iter_4.pth'), map_location='cpu', weights_only=False)
    assert checkpoint['meta']['trainable_only']['omitted']
    assert not any(k.startswith('_fsdp') or '_flat_param' in k for k in checkpoint['state_dict'])
    val = next(r for r in fsdp if 'reason/cIoU' in r)
    # --resume continues the FSDP run from that file
    resume = _config(tmp_path, toy_city_root, fsdp=True, iters=6)
    text = open(resume).read().replace(f"load_from = '{tmp_path / 'init.pth'}'", 'load_from = None')
    open(resume, 'w').write(text)  # --resume takes the work directory's last checkpoint
    _train(resume, fsdp_work, '--resume')
    resumed = [r['step'] for r in _scalars(fsdp_work) if 'loss' in r]
    assert resumed == [5, 6]
    # tools/test.py (one process, no FSDP) scores the FSDP checkpoint as FSDP's validation did
    test_work = str(tmp_path / 'test')
    run_tool([
        sys.executable, 'tools/test.py',
        _config(tmp_path, toy_city_root, fsdp=False),
        osp.join(fsdp_work, 'iter_4.pth'), '--work-dir', test_work
    ],
             env={'OMP_NUM_THREADS': '1'})
    scores = json.load(open(sorted(glob.glob(osp.join(test_work, '*', '*.json')))[-1]))
    assert scores['reason/cIoU'] == pytest.approx(val['reason/cIoU'], abs=0.01)
