"""Export pseudo-labels and confidence maps of a segmentor over a list of (unlabeled) images.

    python tools/export_pseudo_labels.py CONFIG CHECKPOINT --ann-file splits/1_30/unlabeled.txt \
        --out data/cityscapes/pseudo/unimatch_1_30 [--img-dir leftImg8bit/train]
    python -m torch.distributed.run --nproc_per_node 4 tools/export_pseudo_labels.py ... \
        --launcher pytorch

For every image ``<name>`` of the list it writes ``<out>/<name>_pseudo.png`` (label ids,
uint8) and ``<out>/<name>_conf.png`` (maximum softmax probability x 255, uint8), using the
model's own test mode (e.g. sliding-window inference). Files are written under a temporary
name and renamed, and an image whose two files exist is skipped: a run that is stopped and
started again finishes without redoing finished images (and overwrites the temporary file of
the image it was writing). With several processes each takes every N-th image.
``<out>/export_manifest.json`` records the teacher (the checkpoint's SHA-256): a rerun into the
same directory with another checkpoint stops before writing anything, since skipping the
finished images would mix two teachers' pseudo-labels.
"""
import argparse
import json
import os.path as osp
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose, pseudo_collate
from mmengine.dist import get_dist_info
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmcora  # noqa: F401  registers mmcora's components and checkpoint fixes
from mmcora.datasets import read_name_list
from mmcora.engine import apply_torch_threads, load_model_checkpoint, setup_cpu_distributed
from mmcora.utils import file_sha256, write_atomic, write_png_atomic

MANIFEST = 'export_manifest.json'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--ann-file',
        required=True,
        help='image list relative to the data root (names without suffix)')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--data-root', help='default: the config\'s test data_root')
    parser.add_argument(
        '--img-dir', default='leftImg8bit/train', help='image directory under the data root')
    parser.add_argument('--img-suffix', help='default: the config\'s test dataset img_suffix')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args()


def check_manifest(out: str, teacher: dict, rank: int) -> None:
    """Stop if ``out`` holds another teacher's export; rank 0 records this one's.

    Args:
        out (str): The output directory.
        teacher (dict): ``config``, ``checkpoint`` and its ``sha256``.
        rank (int): This process's rank (rank 0 writes the manifest).
    """
    path = osp.join(out, MANIFEST)
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old.get('sha256') != teacher['sha256']:
            raise SystemExit(
                f'error: {out} holds pseudo-labels of another teacher ({old.get("checkpoint")}, '
                f'sha256 {str(old.get("sha256"))[:12]}), not of {teacher["checkpoint"]} (sha256 '
                f'{teacher["sha256"][:12]}); finishing it would mix the two: give another --out '
                f'or delete {out}')
    elif rank == 0:
        write_atomic(path, json.dumps(teacher, indent=1).encode())


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    apply_torch_threads(cfg)
    setup_cpu_distributed(cfg)
    if args.launcher == 'pytorch' and torch.cuda.is_available():
        from mmengine.dist import init_dist
        init_dist('pytorch')
        args.device = f'cuda:{torch.cuda.current_device()}'
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    rank, world_size = get_dist_info()

    test_set = cfg.test_dataloader.dataset
    data_root = args.data_root or test_set.get('data_root', '')
    img_suffix = args.img_suffix or test_set.get('img_suffix', '_leftImg8bit.png')
    names = read_name_list(osp.join(data_root, args.ann_file))
    paths = [osp.join(data_root, args.img_dir, name + img_suffix) for name in names]
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise SystemExit(f'error: {len(missing)} images of {args.ann_file} are missing, '
                         f'first: {missing[0]}')
    # the test pipeline without ground truth: unlabeled images have none
    pipeline = Compose([t for t in test_set.pipeline if t['type'] != 'LoadAnnotations'])

    check_manifest(
        args.out,
        dict(config=args.config, checkpoint=args.checkpoint, sha256=file_sha256(args.checkpoint)),
        rank)
    model = MODELS.build(cfg.model)
    load_model_checkpoint(model, args.checkpoint)
    model = model.to(args.device).eval()

    done = skipped = 0
    start = time.perf_counter()
    for index in range(rank, len(names), world_size):
        stem = osp.join(args.out, names[index])
        label_path, conf_path = stem + '_pseudo.png', stem + '_conf.png'
        if osp.isfile(label_path) and osp.isfile(conf_path):
            skipped += 1
            continue
        data = pipeline(dict(img_path=paths[index], reduce_zero_label=False, seg_fields=[]))
        with torch.no_grad():
            sample = model.test_step(pseudo_collate([data]))[0]
        probs = sample.seg_logits.data.float().softmax(dim=0)
        if probs.shape[0] > 255:  # 255 is the ignore index; ids are written as uint8
            raise SystemExit(f'error: {probs.shape[0]} classes do not fit the uint8 '
                             'pseudo-label maps (at most 255)')
        conf, label = probs.max(dim=0)
        # fixed temporary names: redoing an image overwrites what a killed run left
        write_png_atomic(label_path, label.to(torch.uint8).cpu().numpy(), '.tmp-export')
        write_png_atomic(conf_path, (conf * 255).round().to(torch.uint8).cpu().numpy(),
                         '.tmp-export')
        done += 1
        if done % 50 == 0:
            print(f'[rank {rank}] {done} exported, {skipped} skipped', flush=True)
    print(
        f'[rank {rank}] exported {done}, skipped {skipped} already done, '
        f'{time.perf_counter() - start:.1f}s -> {args.out}',
        flush=True)


if __name__ == '__main__':
    main()
