"""CORA's three stages through tools/train.py and tools/dist_train.sh: exact resume inside
stage 3 (stage, token bank, snapshot and random states restored) and a token bank that is the
same on every rank after every iteration."""
import glob
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config

from mmcora.datasets import read_name_list
from ..conftest import REPO, free_port, run_tool
from ..test_datasets.test_semi_reasoning import write_pseudo

SEMI = osp.join(REPO, 'configs', 'cora', 'cora-semi_tiny_3x600_toy-city-1-30.py')


def stage_config(tmp_path, root, spec, stages=(2, 2, 4), total=None, name='semi.py'):
    """The toy 3-stage config at test size: random tiny models, the session's toy city (1/4
    partition: 8 labeled images), ground-truth maps as pseudo-labels, one worker per loader."""
    pseudo = tmp_path / 'pseudo'
    if not pseudo.is_dir():
        write_pseudo(root, str(pseudo), read_name_list(osp.join(root, 'splits/1_4/unlabeled.txt')))
    cfg = Config.fromfile(SEMI)
    cfg.model.mllm.update(pretrained=str(tmp_path / 'tiny-llava'), toy_pretrain=None)
    cfg.model.sam.toy_pretrain = None
    cfg.labeled_reasoning.update(
        data_root=root, toy_city=spec, ann_file='instructions/1_4_labeled.jsonl')
    cfg.labeled_reasoning.build_instructions.ann_file = 'splits/1_4/labeled.txt'
    cfg.pseudo_labeled.update(
        data_root=root, ann_file='splits/1_4/unlabeled.txt', pseudo_dir=str(pseudo))
    for loader in ('semantic_dataloader', 'conditional_dataloader', 'unlabeled_dataloader'):
        cfg[loader].update(num_workers=1, persistent_workers=False)
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader.dataset.update(data_root=root, toy_city=spec)
    cfg.test_dataloader = cfg.val_dataloader
    for stage, iters in zip(cfg.train_cfg.stages, stages):
        stage['iters'] = iters
    cfg.train_cfg.val_interval = 1000
    total = total or sum(stages)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=1.0, end_factor=0.1, by_epoch=False, begin=0, end=total)
    ]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=10, save_best=None)
    cfg.log_processor = dict(window_size=1, by_epoch=False)
    path = str(tmp_path / name)
    cfg.dump(path)
    return path


def losses(work_dir):
    """iteration -> logged losses (full precision) from the newest run's scalars.json."""
    path = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    rows = [json.loads(line) for line in open(path)]
    return {
        r['step']: {
            k: v
            for k, v in r.items() if k.startswith('loss')
        }
        for r in rows if 'loss' in r
    }


def test_resume_inside_stage_3_repeats_the_uninterrupted_run(tmp_path, toy_city_root,
                                                             toy_city_spec):
    full = stage_config(tmp_path, toy_city_root, toy_city_spec)
    env = dict(OMP_NUM_THREADS='1')
    run_tool([sys.executable, 'tools/train.py', full, '--work-dir', str(tmp_path / 'a')], env=env)
    # the same run stopped after iteration 6 (stage 3 is 5-8) ...
    short = stage_config(
        tmp_path, toy_city_root, toy_city_spec, stages=(2, 2, 2), total=8, name='short.py')
    work = str(tmp_path / 'b')
    run_tool([sys.executable, 'tools/train.py', short, '--work-dir', work], env=env)
    # ... and resumed from its checkpoint with the full schedule
    run_tool([sys.executable, 'tools/train.py', full, '--work-dir', work, '--resume'], env=env)
    log = open(sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]).read()
    assert 'resumed epoch: 0, iter: 6' in log
    assert 'stage 3/3 "unlabeled": iterations 5-8, advancing its data 2 steps' in log
    uninterrupted, resumed = losses(str(tmp_path / 'a')), losses(work)
    assert 'loss_pseudo_mask' in uninterrupted[7] and 'loss_token' in uninterrupted[7]
    for step in (7, 8):
        assert resumed[step] == uninterrupted[step], step
    a = torch.load(osp.join(tmp_path, 'a', 'iter_8.pth'), weights_only=False)['state_dict']
    b = torch.load(osp.join(work, 'iter_8.pth'), weights_only=False)['state_dict']
    assert a.keys() == b.keys()
    assert any(k.startswith('token_bank.') for k in a)
    assert any(k.startswith('consistency_snapshot.') for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_dist_train_two_processes_keep_one_token_bank(tmp_path, toy_city_root, toy_city_spec):
    config = stage_config(tmp_path, toy_city_root, toy_city_spec, stages=(1, 1, 3))
    text = open(config).read()
    text += ("\ncustom_imports = dict(imports=['mmcora', 'tests.test_tools.bank_probe'], "
             "allow_failed_imports=False)\n"
             "custom_hooks = custom_hooks + [dict(type='TokenBankProbeHook')]\n")
    open(config, 'w').write(text)
    work = str(tmp_path / 'work')
    env = {
        'PYTHON': sys.executable,
        'PORT': str(free_port()),
        'PYTHONPATH': REPO,
        'OMP_NUM_THREADS': '1'
    }
    run_tool(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work], env=env)
    log = open(sorted(glob.glob(osp.join(work, '*', '*.log')))[-1]).read()
    assert 'Distributed training: True' in log and 'stage 3/3 "unlabeled"' in log
    ranks = [[json.loads(line) for line in open(osp.join(work, f'bank_rank{r}.jsonl'))]
             for r in (0, 1)]
    assert [r['iter'] for r in ranks[0]] == [1, 2, 3, 4, 5]
    assert ranks[0] == ranks[1]  # same bank on both ranks after every iteration
    filled = [0] + [r['filled'] for r in ranks[0]]
    # one rank pushes at most its 2 labeled images x 3 queries per iteration: more means
    # both ranks' tokens went in
    assert max(b - a for a, b in zip(filled, filled[1:])) > 6
