"""CORA's whole method in one resumable command: data, teacher, pseudo-labels, three stages.

    python tools/cora_pipeline.py [--config configs/cora/cora-semi_tiny_3x600_toy-city-1-30.py]
        [--teacher configs/toy/fcn_r18-tiny_toy-city-1-30.py]
        [--work-dir work_dirs/cora_pipeline] [--seed 0] [--jobs 2] [--cfg-options k=v ...]

Steps (each a command with its own log in ``<work-dir>/logs``; a finished step leaves
``<work-dir>/steps/<step>.json`` and is skipped on a rerun, an interrupted one continues where
it stopped; at most ``--jobs`` run at a time when their inputs are ready):

1. ``data``: the data sets of the CORA config are built once, which generates the toy city
   (toy configs only) and the labeled and val instruction sets.
2. ``sam``, ``llava``: the tiny SAM and LLaVA are pretrained on the toy foundation corpus
   (configs with ``toy_pretrain`` only; cached by recipe outside the work dir).
3. ``teacher``: the teacher segmentor trains on the same labeled partition. The paper takes
   a semi-supervised one (UniMatch or SemiVL; ``--teacher
   configs/unimatch/unimatch_fcn-r18-tiny_toy-city-1-30.py``). On the toy city the supervised
   FCN is the default: it scores higher than UniMatch on the same 8 images (val mIoU
   40.38 +- 0.56 vs 38.51 +- 0.43, configs/unimatch/README.md) in a third of the time.
4. ``pseudo``: its pseudo-labels and confidences for the unlabeled list of the CORA config's
   ``pseudo_labeled`` entry, into ``<work-dir>/pseudo``; ``pseudo_quality`` scores them
   against the ground truth the teacher never saw (toy data has it for every image).
5. ``cora``: CORA's three stages (``CORAStagedTrainLoop``) on the labeled instructions and
   those pseudo-labels, validating at each stage's end.
6. ``evaluate``: ``tools/test.py`` on the final checkpoint, with overlays of every val image
   and its queries in ``<work-dir>/overlays``.

The end prints (and writes to ``<work-dir>/results.md``) the wall time of each step, the
teacher's and the pseudo-labels' quality, and cIoU / gIoU overall and per instruction type
after each stage and for the final test. ``python tools/cora_pipeline.py prepare
{data,sam,llava} CONFIG`` runs one preparation step alone.
"""
import argparse
import json
import os
import os.path as osp
import sys
import warnings
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
DEFAULT_CONFIG = osp.join(REPO, 'configs/cora/cora-semi_tiny_3x600_toy-city-1-30.py')
DEFAULT_TEACHER = osp.join(REPO, 'configs/toy/fcn_r18-tiny_toy-city-1-30.py')


def prepare(what: str, config: str, options: List[str]) -> None:
    """Build what a later step reads: the data sets, or one pretrained toy part."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    import mmcora  # noqa: F401  registers mmcora's components
    from mmcora.engine import apply_torch_threads
    from mmcora.engine.stages import resolve_refs
    cfg = load_config(config, options)
    apply_torch_threads(cfg)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if what == 'data':
        named = {
            'labeled_reasoning': cfg.get('labeled_reasoning'),
            'val_dataloader.dataset': cfg.val_dataloader.dataset
        }
        for where, dataset in named.items():
            if dataset is not None:
                built = DATASETS.build(resolve_refs(dataset, cfg, where))
                print(f'[pipeline] {where}: {len(built)} images', flush=True)
    else:
        part = cfg.model[{'sam': 'sam', 'llava': 'mllm'}[what]]
        module = MODELS.build(part)
        count = sum(p.numel() for p in module.parameters())
        print(
            f'[pipeline] {what}: {type(module).__name__} ready, {count / 1e6:.2f} M '
            'parameters',
            flush=True)


def load_config(path: str, options: List[str]):
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(path)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def build_steps(args, cfg, teacher_cfg) -> list:
    """The pipeline's steps for a staged CORA config and a teacher config."""
    from mmcora.apis.pipeline import Step
    from mmcora.evaluation.stage_report import val_entries
    py, work = sys.executable, osp.abspath(args.work_dir)
    seed = [f'randomness.seed={args.seed}']
    if 'pseudo_labeled' not in cfg or not cfg.train_cfg.get('stages'):
        raise SystemExit(f'error: {args.config} is no staged CORA config (it needs a '
                         'pseudo_labeled entry and train_cfg.stages)')
    pseudo = cfg.pseudo_labeled
    pseudo_dir = osp.join(work, 'pseudo')
    teacher_dir = osp.join(work, 'teacher')
    teacher_ckpt = osp.join(teacher_dir, f'iter_{teacher_cfg.train_cfg.max_iters}.pth')
    cora_dir, test_dir = osp.join(work, 'cora'), osp.join(work, 'test')
    cora_iters = sum(int(s['iters']) for s in cfg.train_cfg.stages)
    cora_options = [f'pseudo_labeled.pseudo_dir={pseudo_dir}', *args.cfg_options]
    prepare_cmd = [py, osp.abspath(__file__), 'prepare']
    steps = [
        Step(
            'data', [*prepare_cmd, 'data', args.config, '--cfg-options', *cora_options],
            describe='toy city and instruction sets')
    ]

    def teacher_outputs() -> Dict:
        final = val_entries(teacher_dir, key='mIoU')
        return dict(checkpoint=teacher_ckpt, mIoU=final[max(final)]['mIoU'] if final else None)

    def quality_outputs() -> Dict:
        with open(osp.join(work, 'pseudo_quality.json')) as f:
            summary = json.load(f)
        return {k: summary[k] for k in ('pixel_accuracy', 'miou') if k in summary}

    img_dir = pseudo.get('data_prefix', {}).get('img_path', 'leftImg8bit/train')
    steps += [
        Step(
            'teacher', [
                py,
                osp.join(TOOLS, 'train.py'), args.teacher, '--work-dir', teacher_dir, '--resume',
                '--cfg-options', *seed
            ],
            needs=['data'],
            describe=f'{teacher_cfg.model.type} on the labeled partition',
            outputs=teacher_outputs),
        Step(
            'pseudo', [
                py,
                osp.join(TOOLS, 'export_pseudo_labels.py'), args.teacher, teacher_ckpt,
                '--ann-file', pseudo.ann_file, '--data-root', pseudo.data_root, '--img-dir',
                img_dir, '--out', pseudo_dir
            ],
            needs=['teacher'],
            describe='pseudo-labels of the unlabeled images',
            outputs=lambda: dict(dir=pseudo_dir)),
        Step(
            'pseudo_quality', [
                py,
                osp.join(TOOLS, 'analysis', 'pseudo_label_quality.py'), pseudo_dir, '--data-root',
                pseudo.data_root, '--ann-file', pseudo.ann_file, '--out',
                osp.join(work, 'pseudo_quality.json')
            ],
            needs=['pseudo'],
            outputs=quality_outputs),
    ]
    # Listed after the teacher chain: steps start in list order when ready, so with 2 jobs
    # one runs teacher -> pseudo -> quality while the other pretrains SAM, then LLaVA.
    foundation = []
    for name, key in (('sam', 'sam'), ('llava', 'mllm')):
        if cfg.model[key].get('toy_pretrain') is not None:
            foundation.append(name)
            steps.append(
                Step(
                    name, [*prepare_cmd, name, args.config],
                    describe=f'tiny {name.upper() if name == "sam" else "LLaVA"} pretrained on '
                    'the toy foundation corpus (cached by recipe)'))
    steps += [
        Step(
            'cora', [
                py,
                osp.join(TOOLS, 'train.py'), args.config, '--work-dir', cora_dir, '--resume',
                '--cfg-options', *seed, *cora_options
            ],
            needs=['data', 'pseudo', *foundation],
            describe=f'CORA, {" + ".join(str(s["iters"]) for s in cfg.train_cfg.stages)} '
            'iterations',
            outputs=lambda: dict(checkpoint=latest_checkpoint(cora_dir))),
        Step(
            'evaluate', [
                py,
                osp.join(TOOLS, 'test.py'), args.config,
                osp.join(cora_dir, f'iter_{cora_iters}.pth'), '--work-dir', test_dir, '--show-dir',
                osp.join(work, 'overlays'), '--cfg-options', *cora_options
            ],
            needs=['cora'],
            describe='final checkpoint on val, overlays with the queries',
            outputs=lambda: dict(metrics=latest_test_json(test_dir))),
    ]
    return steps


def latest_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def latest_test_json(work_dir: str) -> str:
    """``tools/test.py``'s metrics file ``<work_dir>/<timestamp>/<timestamp>.json``."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isfile(osp.join(work_dir, d, d + '.json')))
    if not runs:
        raise FileNotFoundError(f'no <timestamp>/<timestamp>.json with metrics in {work_dir}')
    return osp.join(work_dir, runs[-1], runs[-1] + '.json')


def report(args, cfg, steps, markers) -> str:
    from mmcora.apis.pipeline import timing_table
    from mmcora.evaluation.stage_report import metrics_table, stage_rows, test_metrics
    out = markers['evaluate']['outputs']
    rows = stage_rows(osp.join(osp.abspath(args.work_dir), 'cora'), cfg.train_cfg.stages)
    rows.append(('final checkpoint, tools/test.py', test_metrics(out['metrics'])))
    teacher = markers['teacher']['outputs']
    quality = markers['pseudo_quality']['outputs']
    queries = int(rows[0][1]['reason/num_masks']) if rows[0][1] else 'the'
    miou = 'n/a' if teacher['mIoU'] is None else f'{teacher["mIoU"]:.2f}'
    lines = [
        f'# CORA pipeline: {osp.basename(args.config)}, seed {args.seed}',
        '',
        timing_table(markers, steps),
        '',
        f'Teacher {osp.basename(args.teacher)}: val mIoU {miou}; its pseudo-labels '
        f'on the unlabeled images: pixel accuracy {quality.get("pixel_accuracy")} %, '
        f'mIoU {quality.get("miou")}.',
        '',
        f'Val cIoU / gIoU (%) on {queries} val queries, overall and per instruction type:',
        '',
        metrics_table(rows),
        '',
        f'Overlays with the queries: {osp.join(args.work_dir, "overlays")}',
    ]
    return '\n'.join(lines)


def main() -> None:
    # mmengine imports pkg_resources; its deprecation warning says nothing about this run
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    if len(sys.argv) > 1 and sys.argv[1] == 'prepare':
        parser = argparse.ArgumentParser(description='one preparation step of the pipeline')
        parser.add_argument('prepare')
        parser.add_argument('what', choices=['data', 'sam', 'llava'])
        parser.add_argument('config')
        parser.add_argument('--cfg-options', nargs='+', default=[])
        args = parser.parse_args()
        return prepare(args.what, args.config, args.cfg_options)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='a staged CORA config')
    parser.add_argument('--teacher', default=DEFAULT_TEACHER, help='the teacher\'s config')
    parser.add_argument('--work-dir', default='work_dirs/cora_pipeline')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=2, help='steps run at the same time')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides of the CORA config (train and test)')
    args = parser.parse_args()
    from mmcora.apis.pipeline import StepFailed, run_steps
    cfg = load_config(args.config, args.cfg_options)
    teacher_cfg = load_config(args.teacher, [])
    steps = build_steps(args, cfg, teacher_cfg)
    try:
        markers = run_steps(steps, args.work_dir, jobs=args.jobs)
    except StepFailed as error:
        raise SystemExit(f'error: {error}')
    text = report(args, cfg, steps, markers)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    print('\n' + text, flush=True)


if __name__ == '__main__':
    main()
