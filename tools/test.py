"""Test (evaluate) a checkpoint with mmcora's components (mmseg's tools/test.py).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show-dir DIR]
    python tools/test.py OUT [same options]   # an export of tools/export_hf.py (or OUT/config.py)
    tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [same options]

An export's config names its weights (``load_from``: ``OUT/heads.safetensors``), so CHECKPOINT
may be left out; every file of the export is checked before anything is built.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmcora  # noqa: F401  registers mmcora's components and checkpoint fixes
from mmcora.apis.export_dir import load_config
from mmcora.engine import apply_torch_threads, register_checkpoint_fit, setup_cpu_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a segmentor')
    parser.add_argument(
        'config', help='test config file path, or an export directory of tools/export_hf.py')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint file; leave it out for an export (its config names its weights)')
    parser.add_argument(
        '--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out', type=str, help='the directory to save output prediction for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, '
        'it will be automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
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
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> Config:
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; refer to the usage '
            '"visualization=dict(type=\'SegVisualizationHook\')" to use --show or --show-dir')
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    # mmseg's hook draws every 50th image by default; a show dir should hold every image.
    visualization_hook['interval'] = 1
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
    return cfg


def main() -> None:
    args = parse_args()
    cfg, exported = load_config(args.config)  # an export: its files checked first
    if args.checkpoint is None and exported is None:
        sys.exit(f'tools/test.py: CHECKPOINT is needed with {args.config} (only an export of '
                 'tools/export_hf.py names its own weights)')
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.basename(osp.normpath(exported)) if exported else osp.splitext(
            osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)

    if args.checkpoint is not None:
        cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    apply_torch_threads(cfg)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    register_checkpoint_fit(runner)  # a checkpoint of another config is an error, not a warning
    runner.test()


if __name__ == '__main__':
    main()
