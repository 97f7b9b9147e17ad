"""Train a segmentor with mmcora's components (mmseg's tools/train.py, plus CPU/gloo support).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG NUM_PROCS [same options]
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

import mmcora  # noqa: F401  registers mmcora's components and checkpoint fixes
from mmcora.engine import (amp_optim_wrapper, apply_torch_threads, register_checkpoint_fit,
                           resume_checkpoint, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy '
        'format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir priority: CLI > config file > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:  # bf16 autocast where the GPU supports it (mmcora.engine.precision)
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        import torch
        cuda = torch.cuda.is_available()
        # native bf16 only (Ampere and later): emulated bf16 on a V100 or T4 is slow
        bf16 = cuda and torch.cuda.is_bf16_supported(including_emulation=False)
        cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper, cuda, bf16)

    cfg.resume = args.resume
    if args.resume and cfg.get('load_from') is None:
        try:  # last_checkpoint of a moved work directory
            moved = resume_checkpoint(cfg.work_dir)
        except FileNotFoundError as error:
            raise SystemExit(f'error: {error}') from None
        if moved is not None:
            print_log(
                f'{osp.join(cfg.work_dir, "last_checkpoint")} names a checkpoint outside '
                f'{cfg.work_dir} (the directory was moved or copied); resuming from {moved}',
                logger='current',
                level=logging.WARNING)
            cfg.load_from = moved
        elif find_latest_checkpoint(cfg.work_dir) is None:
            print_log(  # mmengine says "resumed from the latest checkpoint None" and starts
                f'--resume: {cfg.work_dir} holds no checkpoint (no last_checkpoint file); '
                'training starts from iteration 0',
                logger='current',
                level=logging.WARNING)
    apply_torch_threads(cfg)
    setup_cpu_distributed(cfg)
    if cfg.get('runner_type') == 'FlexibleRunner':  # its strategies refuse keys they do not know
        cfg.get('env_cfg', {}).pop('torch_num_threads', None)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    register_checkpoint_fit(runner)  # a checkpoint of another config is an error, not a warning
    runner.train()


if __name__ == '__main__':
    main()
