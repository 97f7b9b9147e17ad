"""The CORA toy config through the user tools: train, resume, test --out/--show-dir, and
a short run that must learn far beyond the trivial baselines."""
import glob
import json
import os.path as osp
import re
import sys

from ..conftest import REPO, run_tool

TOY = osp.join(REPO, 'configs', 'cora', 'toy-city_1-30_tiny.py')


def _small_config(tmp_path, toy_city_root, toy_city_spec, iters, val_interval, foundation=False):
    """The toy config at test size; plumbing tests keep a random SAM and LLaVA (no
    foundation cache needed)."""
    path = tmp_path / 'cora_small.py'
    warmup = min(50, iters // 2)
    random = '' if foundation else ', toy_pretrain=None'
    path.write_text(
        f'_base_ = [{TOY!r}]\n'
        f'llava_path = {str(tmp_path / "tiny-llava")!r}\n'
        f'model = dict(mllm=dict(pretrained=llava_path{random}), sam=dict(tiny=dict(){random}))\n'
        # the session's toy city has 30 training scenes: its 1/4 partition holds 8 labeled
        # images, as many as the default city's 1/30
        f"train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict("
        f"data_root={toy_city_root!r}, toy_city={toy_city_spec!r}, "
        "ann_file='instructions/1_4_labeled.jsonl', "
        "build_instructions=dict(ann_file='splits/1_4/labeled.txt')))\n"
        f"val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict("
        f"data_root={toy_city_root!r}, toy_city={toy_city_spec!r}))\n"
        'test_dataloader = val_dataloader\n'
        f'train_cfg = dict(max_iters={iters}, val_interval={val_interval})\n'
        f'param_scheduler = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, '
        f'end={warmup}), dict(type="LinearLR", start_factor=1.0, end_factor=0.0, '
        f'by_epoch=False, begin={warmup}, end={iters})]\n'
        f'default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval={iters}))\n')
    return str(path)


def _log(work_dir):
    return open(sorted(glob.glob(osp.join(work_dir, '*', '*.log')))[-1]).read()


def test_train_resume_test_out_and_show_dir(tmp_path, toy_city_root, toy_city_spec):
    config = _small_config(tmp_path, toy_city_root, toy_city_spec, 4, 4)
    work = str(tmp_path / 'work')
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work])
    run_tool([
        sys.executable, 'tools/train.py', config, '--work-dir', work, '--resume', '--cfg-options',
        'train_cfg.max_iters=6'
    ])
    assert 'resumed epoch: 0, iter: 4' in _log(work)
    out = str(tmp_path / 'test')
    run_tool([
        sys.executable, 'tools/test.py', config,
        osp.join(work, 'iter_6.pth'), '--work-dir', out, '--out',
        osp.join(out, 'pred'), '--show-dir',
        osp.join(out, 'vis')
    ])
    records = [json.load(open(p)) for p in glob.glob(osp.join(out, 'pred', '*.json'))]
    assert len(records) == toy_city_spec['num_val']
    masks = glob.glob(osp.join(out, 'pred', '*_q*.png'))
    assert len(masks) == sum(len(r['queries']) for r in records)
    assert len(glob.glob(osp.join(out, 'vis', '**', '*.png'), recursive=True)) == len(records)
    assert 'reason/cIoU' in _log(out)


def test_short_training_beats_trivial_baselines(tmp_path, toy_city_root, toy_city_spec):
    # The main job's model: SAM and LLaVA from the toy foundation cache (made on first use).
    config = _small_config(tmp_path, toy_city_root, toy_city_spec, 2000, 2000, foundation=True)
    work = str(tmp_path / 'work')
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work])
    ciou = float(re.findall(r'reason/cIoU: ([\d.]+)', _log(work))[-1])
    baselines = run_tool([sys.executable, 'tools/analysis/reasoning_baselines.py', config]).stdout
    foreground = float(re.search(r'all foreground: cIoU=([\d.]+)', baselines).group(1))
    background = float(re.search(r'all background: cIoU=([\d.]+)', baselines).group(1))
    assert background == 0.0 and 0 < foreground < 15
    assert ciou > 3 * foreground, (ciou, foreground)


def _losses(work_dir):
    return re.findall(r'Iter\(train\) \[\s*\d+/\d+\].*?(grad_norm: [\d.]+\s+loss: [\d.]+.*)$',
                      _log(work_dir), re.M)


def test_same_seed_same_losses_whether_the_tiny_llava_is_written_or_loaded(
        tmp_path, toy_city_root, toy_city_spec):
    # The first run of a config writes the tiny LLaVA, later runs load it; writing it used to
    # reseed the global RNG, so SAM and the heads were initialised differently the first time.
    config = _small_config(tmp_path, toy_city_root, toy_city_spec, 6, 100)
    options = ['--cfg-options', 'default_hooks.logger.interval=1']
    first, second = str(tmp_path / 'first'), str(tmp_path / 'second')
    assert not osp.exists(tmp_path / 'tiny-llava')
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', first, *options])
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', second, *options])
    assert len(_losses(first)) == 6 and _losses(first) == _losses(second)


def test_sam_linear_probe_sees_what_toy_pretraining_adds(toy_city_root):
    # The probe reads the frozen encoder the CORA config uses; the toy foundation SAM (from
    # the cache, made on first use) must carry far more class information than random weights.
    def probe(*extra):
        out = run_tool([
            sys.executable, 'tools/analysis/sam_linear_probe.py', TOY, '--data-root', toy_city_root,
            '--train-list', 'splits/1_4/labeled.txt', *extra
        ]).stdout
        match = re.search(r'val token accuracy ([\d.]+), mIoU ([\d.]+)', out)
        assert match, out
        return float(match.group(1)), float(match.group(2))

    random_acc, random_miou = probe('--random')
    acc, miou = probe()
    assert 0 < random_acc < acc <= 1
    assert miou > random_miou + 10, (miou, random_miou)


def test_trainable_only_checkpoints_resume_and_test_as_full_ones(tmp_path, toy_city_root,
                                                                 toy_city_spec):
    """The CORA configs save only what trains (TrainableCheckpointHook); --resume and
    tools/test.py from such a checkpoint give what a full checkpoint of the same run gives."""
    import torch
    config = _small_config(tmp_path, toy_city_root, toy_city_spec, 4, 4)
    runs = {}
    for kind, options in (('trainable', []),
                          ('full', ['default_hooks.trainable_checkpoint.omit_frozen=False'])):
        work = str(tmp_path / kind)
        run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work] +
                 (['--cfg-options', *options] if options else []))
        size = osp.getsize(osp.join(work, 'iter_4.pth'))
        run_tool([
            sys.executable, 'tools/train.py', config, '--work-dir', work, '--resume',
            '--cfg-options', 'train_cfg.max_iters=6', *options
        ])
        assert 'resumed epoch: 0, iter: 4' in _log(work)
        out = str(tmp_path / f'{kind}_test')
        run_tool([
            sys.executable, 'tools/test.py', config,
            osp.join(work, 'iter_6.pth'), '--work-dir', out
        ])
        metrics = re.findall(r'reason/\S+: [\d.]+', _log(out))  # not the timings
        runs[kind] = (size, torch.load(osp.join(work, 'iter_6.pth'), weights_only=False), metrics)
    (small, trained, small_metrics), (large, full, full_metrics) = runs['trainable'], runs['full']
    # the toy trains whole token rows and heads (with their optimizer state): a smaller share
    # of the model is frozen than at 7B
    assert small < 0.8 * large, (small, large)
    omitted = set(trained['meta']['trainable_only']['omitted'])
    assert omitted and set(trained['state_dict']) == set(full['state_dict']) - omitted
    for name, value in trained['state_dict'].items():  # the same training, either way
        assert torch.equal(value, full['state_dict'][name]), name
    assert small_metrics == full_metrics and any('cIoU' in m for m in small_metrics)
