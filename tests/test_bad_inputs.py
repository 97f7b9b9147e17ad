"""Bad input at the user-facing entry points: each row names the exception and what the message
must name (file, line, key or query). Add a row whenever an entry point or a failure mode
lands (issue: bad input everywhere a user can give it)."""
import glob
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch

IMAGE = np.full((64, 96, 3), 120, np.uint8)
ANCHOR = np.zeros((64, 96), bool)
ANCHOR[10:30, 10:40] = True

INFERENCER_ROWS = [
    # (id, queries, anchors, exception, message pattern)
    ('anchor placeholder without its mask', ['Segment the car left of the bus <anchor>.'], None,
     ValueError, r"query 0 \('Segment the car left of the bus <anchor>\.'\) names <anchor> "
     r'but no anchor mask was given'),
    ('anchor mask without placeholder', ['Segment the car.'], [ANCHOR], ValueError,
     r"query 0 \('Segment the car\.'\) has an anchor mask but no <anchor>"),
    ('anchor mask of another size', ['Segment the car <anchor>.'], [np.zeros(
        (5, 5), bool)], ValueError, r'anchor 0 is \(5, 5\), the image is \(64, 96\)'),
    ('more anchors than queries', ['Segment the car.'], [None, None], ValueError,
     '1 queries but 2 anchors'),
    ('empty anchor mask', ['Segment the car <anchor>.'], [np.zeros(
        (64, 96), bool)], ValueError, r'anchor 0 is empty \(no pixel set\)'),
    ('anchor mask of 0/255', ['Segment the car <anchor>.'], [ANCHOR.astype(np.uint8) * 255],
     ValueError, r'anchor 0 must be a bool \(or 0/1\) mask, got uint8 values \[0, 255\]'),
    ('anchor mask of text', ['Segment the car <anchor>.'], [np.full(
        (64, 96), 'x')], ValueError, r'anchor 0 must be a bool \(or 0/1\) mask, got <U1'),
]


@pytest.mark.parametrize(
    'queries, anchors, error, message', [row[1:] for row in INFERENCER_ROWS],
    ids=[row[0] for row in INFERENCER_ROWS])
def test_inferencer_rejects(inferencer, queries, anchors, error, message):
    with pytest.raises(error, match=message):
        inferencer(IMAGE, queries, anchors=anchors)


def test_inferencer_takes_a_0_1_list_anchor_as_the_bool_mask(inferencer):
    query = ['Segment the car <anchor>.']
    as_bool = inferencer(IMAGE, query, anchors=[ANCHOR])['masks']
    as_list = inferencer(IMAGE, query, anchors=[ANCHOR.astype(int).tolist()])['masks']
    assert np.array_equal(as_bool, as_list)


def test_inferencer_without_queries_gives_an_empty_result(inferencer):
    result = inferencer(IMAGE, [])
    assert result['masks'].shape == (0, 64, 96) and result['masks'].dtype == bool
    assert result['texts'] == [] and result['visualization'].shape == (64, 96, 3)


def test_model_predict_without_queries_fills_empty_predictions(inferencer):
    from mmcora.structures import ReasoningDataSample
    model = inferencer.model
    sample = ReasoningDataSample(metainfo=dict(ori_shape=(64, 96), queries=[]))
    embeddings = torch.zeros(1, model.sam.prompt_dim, *model.sam.embedding_size)
    out = model.predict_with_features(embeddings, None, [sample])[0]
    assert out.pred_masks.shape == (0, 64, 96) and out.pred_texts == []


@pytest.mark.parametrize('keep', [0, 100, 0.5], ids=['empty', 'first 100 bytes', 'half'])
def test_truncated_checkpoint_names_the_file(tmp_path, keep):
    from mmengine.runner import CheckpointLoader

    import mmcora  # noqa: F401  installs the checkpoint loaders
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1000))), good)
    data = good.read_bytes()
    bad = tmp_path / 'iter_2000.pth'
    bad.write_bytes(data[:int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(
            RuntimeError,
            match=r'iter_2000\.pth is not a readable checkpoint .*'
            r'truncated or corrupt'):
        CheckpointLoader.load_checkpoint(str(bad), map_location='cpu')


@pytest.mark.parametrize('keep', [0, 0.5], ids=['empty', 'half'])
def test_truncated_sam_checkpoint_names_the_file(tmp_path, keep):
    from mmcora.models.sam import SAMWrapper, load_sam_state_dict
    good = tmp_path / 'good.pth'
    torch.save(SAMWrapper(tiny=dict()).state_dict(), good)
    bad = tmp_path / 'sam_vit_h_4b8939.pth'
    bad.write_bytes(good.read_bytes()[:int(keep * good.stat().st_size)])
    with pytest.raises(
            RuntimeError,
            match=r'SAM checkpoint .*sam_vit_h_4b8939\.pth is not a '
            r'readable torch file .*truncated or corrupt'):
        load_sam_state_dict(str(bad))


def test_unreadable_toy_sam_resume_state_restarts_pretraining(tmp_path, monkeypatch):
    # A partial.pth cut short (disk full, killed copy) must not block the pretraining: the
    # run warns, naming the file, and starts afresh with the same result as a clean run.
    from mmcora.models.foundation import FoundationCorpus, SAMRecipe, pretrain_sam
    from mmcora.models.foundation import resume as resume_module
    from mmcora.models.sam import TINY_DEFAULTS, build_tiny_sam
    tiny = {**TINY_DEFAULTS, 'img_size': 256, 'patch_size': 8, 'window_size': 8}
    corpus = FoundationCorpus(num_scenes=2).render()
    recipe = SAMRecipe(num_scenes=2, steps=2, masks_per_image=2)
    resume = tmp_path / 'partial.pth'
    resume.write_bytes(b'PK\x03\x04 cut short')
    torch.manual_seed(0)
    clean = build_tiny_sam(**tiny)
    pretrain_sam(clean, corpus, recipe)
    messages = []
    monkeypatch.setattr(resume_module, 'print_log', lambda msg, **kw: messages.append(msg))
    torch.manual_seed(0)
    restarted = build_tiny_sam(**tiny)
    pretrain_sam(restarted, corpus, recipe, resume_file=str(resume))
    assert any(f'{resume} is unreadable' in m and 'starts from step 0' in m for m in messages)
    for key, value in clean.state_dict().items():
        assert torch.equal(value, restarted.state_dict()[key]), key


def test_misspelled_toy_pretrain_key_is_named():
    from mmcora.models.sam import SAMWrapper
    with pytest.raises(
            ValueError,
            match=r"unknown toy_pretrain keys \['stepz'\]; expected "
            r"some of \[.*'steps'"):
        SAMWrapper(tiny=dict(img_size=256, patch_size=8), toy_pretrain=dict(stepz=10))


@pytest.mark.parametrize(
    'kwargs, message', [
        (dict(toy_pretrain=dict()), 'toy_pretrain pretrains a tiny LLaVA: give it with tiny'),
        (dict(tiny=dict(), toy_pretrain=dict(tune=3)),
         r"unknown toy_pretrain keys \['tune'\]; expected some of \[.*'tune_steps'"),
    ],
    ids=['toy LLaVA without tiny', 'misspelled toy LLaVA key'])
def test_toy_llava_options_are_checked(tmp_path, kwargs, message):
    from mmcora.models.mllm import LlavaMLLM
    with pytest.raises(ValueError, match=message):
        LlavaMLLM(str(tmp_path / 'llava'), **kwargs)


@pytest.mark.parametrize(
    'kwargs, message', [
        (dict(toy_pretrain=dict()), 'toy_pretrain makes the checkpoint of a tiny SAM'),
        (dict(tiny=dict(img_size=256, patch_size=8),
              toy_pretrain=dict(stepz=10)), r"unknown toy_pretrain keys \['stepz'\]"),
    ],
    ids=['toy SAM without tiny', 'misspelled toy SAM key'])
def test_segzero_toy_sam_options_are_checked(kwargs, message):
    from mmcora.models.segzero import SAMPromptSegmenter
    with pytest.raises(ValueError, match=message):
        SAMPromptSegmenter(**kwargs)


def test_segzero_semi_missing_pseudo_label_stops_before_the_warm_start(
        toy_city_root, toy_city_spec, qwen_dir, sam2_dir, tmp_path):
    """Seg-Zero's semi config: a pseudo-label missing from the GRPO stage's data stops the run
    before iteration 1 (not 600 warm-start steps later), naming the list line and the file."""
    import glob
    import os.path as osp

    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmcora.datasets import read_name_list
    from .conftest import REPO
    from .test_datasets.test_semi_reasoning import write_pseudo
    from .test_segzero.test_configs import shrink
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'segzero', 'segzero_tiny_sft-600-grpo-100_toy-city-1-30_semi.py'))
    unlabeled = read_name_list(osp.join(toy_city_root, 'splits/1_30/unlabeled.txt'))
    write_pseudo(toy_city_root, str(tmp_path / 'pseudo'), unlabeled)
    (tmp_path / 'pseudo' / f'{unlabeled[3]}_conf.png').unlink()
    cfg.model = shrink(cfg.model, qwen_dir, sam2_dir)
    for dataset in (cfg.train_dataloader.dataset, cfg.val_dataloader.dataset, cfg.labeled_segzero):
        dataset.update(data_root=toy_city_root, toy_city=toy_city_spec)
    cfg.pseudo_labeled.update(
        data_root=toy_city_root, toy_city=toy_city_spec, pseudo_dir=str(tmp_path / 'pseudo'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.grpo_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
            FileNotFoundError, match=rf'splits/1_30/unlabeled.txt line 4.*{unlabeled[3]}_conf.png'):
        runner.train()
    assert runner.iter == 0 and not glob.glob(str(tmp_path / 'work' / '*.pth'))


@pytest.mark.parametrize(
    'options, message', [
        (dict(train_cfg=dict(num_generation=8)),
         r"unknown model.train_cfg keys \['num_generation'\]; expected some of .*'num_generations'"
         ),
        (dict(test_cfg=dict(max_new_token=64)),
         r"unknown model.test_cfg keys \['max_new_token'\]; expected some of \['max_new_tokens'\]"),
        (dict(train_cfg=dict(mode='ppo')),
         "model.train_cfg.mode must be 'grpo' or 'sft', got 'ppo'"),
    ],
    ids=['misspelled train_cfg key', 'misspelled test_cfg key', 'unknown training mode'])
def test_segzero_options_are_checked_before_the_models_load(options, message):
    """The reasoner's directory does not exist: the option error must come first."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(
        type='SegZeroSegmentor',
        reasoner=dict(type='QwenReasoner', pretrained='checkpoints/no-such-qwen'),
        segmenter=dict(type='SAM2Segmenter', pretrained='checkpoints/no-such-sam2'),
        **options)
    with pytest.raises((KeyError, ValueError), match=message):
        MODELS.build(cfg)


# ----------------------------------------------------------------- a checkpoint of another config
def _toy_fcn(num_classes: int = 19):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmcora  # noqa: F401
    from .conftest import TOY_CONFIG
    init_default_scope('mmseg')
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.model.decode_head.num_classes = num_classes
    return MODELS.build(cfg.model)


def _mismatch_checkpoints(tmp_path):
    """(file, message) pairs: checkpoints that do not fit the toy FCN of 19 classes."""
    fcn = _toy_fcn().state_dict()
    rows = []
    other_classes = tmp_path / 'fcn_20_classes.pth'
    torch.save(dict(state_dict=_toy_fcn(20).state_dict()), other_classes)
    rows.append((other_classes, r'fcn_20_classes\.pth does not fit this EncoderDecoder: 2 '
                 r'have another shape \(decode_head\.conv_seg\.weight: \(20, 64, 1, 1\) in '
                 r'the file, \(19, 64, 1, 1\) in the model'))
    other_model = tmp_path / 'other_model.pth'
    torch.save(dict(state_dict={'mllm.lm_head.weight': torch.zeros(8, 4)}), other_model)
    rows.append((other_model, r'other_model\.pth does not fit this EncoderDecoder: 1 of its 1 '
                 r'weights are not in the model \(mllm\.lm_head\.weight\); '
                 r"\d+ of the model's weights are not in it \(backbone\.stem"))
    no_head = tmp_path / 'no_head.pth'
    torch.save({'module.' + k: v for k, v in fcn.items() if 'conv_seg' not in k}, no_head)
    rows.append((no_head, r"no_head\.pth does not fit this EncoderDecoder: 2 of the model's "
                 r'weights are not in it \(decode_head\.conv_seg\.weight, '
                 r'decode_head\.conv_seg\.bias\)\. Was it made with another config'))
    return rows


def test_checkpoint_of_another_config_is_refused_naming_the_file(tmp_path):
    from mmcora.engine import CheckpointMismatchError, load_model_checkpoint
    model = _toy_fcn()
    for path, message in _mismatch_checkpoints(tmp_path):
        with pytest.raises(CheckpointMismatchError, match=message):
            load_model_checkpoint(model, str(path))
    fits = tmp_path / 'fits.pth'  # the same model's checkpoint, DDP-prefixed, loads exactly
    trained = {
        k: torch.randn_like(v) if v.is_floating_point() else v
        for k, v in _toy_fcn().state_dict().items()
    }
    torch.save(dict(state_dict={'module.' + k: v for k, v in trained.items()}), fits)
    load_model_checkpoint(model, str(fits))
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    from mmseg.models import SegTTAModel  # tools/test.py --tta: keys of the wrapped model
    tta = SegTTAModel(module=_toy_fcn())
    load_model_checkpoint(tta, str(fits))
    assert all(torch.equal(v, trained[k]) for k, v in tta.module.state_dict().items())


def test_inferencer_refuses_a_checkpoint_of_another_config(tmp_path, inferencer, inferencer_cfg):
    import copy

    from mmcora.apis import ReasoningSegInferencer
    from mmcora.engine import CheckpointMismatchError
    model = copy.deepcopy(inferencer.model)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('sam.mask_decoder')}
    path = tmp_path / 'cora_without_decoder.pth'
    torch.save(dict(state_dict=state), path)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'cora_without_decoder\.pth does not fit this CORASegmentor: \d+ of the '
            r"model's weights are not in it \(sam\.mask_decoder\."):
        ReasoningSegInferencer(model, str(path), cfg=inferencer_cfg)


@pytest.mark.parametrize('tool', ['test', 'train'])
def test_tools_refuse_a_checkpoint_of_another_config(tmp_path, small_toy_config, tool):
    """tools/test.py CHECKPOINT and tools/train.py load_from=...: mmengine alone loads what
    fits with a warning and evaluates (or trains) a half-random model."""
    import subprocess
    import sys

    from .conftest import REPO
    path, message = _mismatch_checkpoints(tmp_path)[0]
    work = str(tmp_path / 'work')
    args = ([sys.executable, 'tools/test.py', small_toy_config,
             str(path), '--work-dir', work] if tool == 'test' else [
                 sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work,
                 '--cfg-options', f'load_from={path}'
             ])
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert re.search('CheckpointMismatchError: .*' + message, result.stderr), result.stderr[-3000:]
    assert not glob.glob(osp.join(work, '*.pth'))


# ----------------------------------------------------------------- interrupted and resumed runs
def test_resume_with_nothing_to_resume_says_so(tmp_path, small_toy_config):
    """A typo in --work-dir with --resume trains afresh: it must say so, naming the directory."""
    import sys

    from .conftest import run_tool
    work = str(tmp_path / 'typo_work_dir')
    result = run_tool([
        sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work, '--resume',
        '--cfg-options', 'train_cfg.max_iters=2'
    ])
    assert (f'--resume: {work} holds no checkpoint (no last_checkpoint file); training starts '
            'from iteration 0') in result.stdout + result.stderr
    assert osp.isfile(osp.join(work, 'iter_2.pth'))


def test_killed_training_resumes_where_it_stopped(tmp_path, small_toy_config):
    """SIGKILL (OOM killer, preempted node) after a checkpoint: --resume continues from the
    newest checkpoint and repeats no finished iteration."""
    import subprocess
    import sys
    import time

    from .conftest import REPO, run_tool
    work = str(tmp_path / 'work')
    options = ['--cfg-options', 'train_cfg.max_iters=12', 'train_cfg.val_interval=100']
    process = subprocess.Popen(
        [sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work, *options],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not osp.isfile(osp.join(work, 'last_checkpoint')) and process.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.02)
    process.kill()
    process.wait()
    with open(osp.join(work, 'last_checkpoint')) as f:
        stopped_at = int(re.search(r'iter_(\d+)\.pth', f.read()).group(1))
    assert stopped_at < 12, 'the run ended before it was killed: the test saw no interruption'
    run_tool([
        sys.executable, 'tools/train.py', small_toy_config, '--work-dir', work, '--resume', *options
    ])
    logs = sorted(glob.glob(osp.join(work, '*', '*.log')))
    rerun = open(logs[-1]).read()
    assert f'resumed epoch: 0, iter: {stopped_at}' in rerun
    trained = [int(n) for n in re.findall(r'Iter\(train\) \[\s*(\d+)/12\]', rerun)]
    assert trained and min(trained) == stopped_at + 1 and max(trained) == 12, trained
    assert osp.isfile(osp.join(work, 'iter_12.pth'))


# ----------------------------------------------------------------- tools/export_hf.py and exports
def _export_rows(tmp_path, cora_export):
    """(id, checkpoint, out, exception, message): exports that must stop, naming the file."""
    import json
    import shutil
    checkpoint = cora_export['checkpoint']
    data = open(checkpoint, 'rb').read()
    truncated = tmp_path / 'iter_8.pth'
    truncated.write_bytes(data[:len(data) // 2])
    other_config = _mismatch_checkpoints(tmp_path)[0][0]  # the toy FCN's, 20 classes
    other_export = tmp_path / 'other_export'
    shutil.copytree(cora_export['out'], other_export)
    meta = json.load(open(other_export / 'export.json'))
    meta['source'].update(checkpoint='/runs/b/iter_600.pth', checkpoint_sha256='ab' * 32)
    (other_export / 'export.json').write_text(json.dumps(meta))
    not_an_export = tmp_path / 'results'
    not_an_export.mkdir()
    (not_an_export / 'notes.txt').write_text('mine')
    new = str(tmp_path / 'new_export')
    return [
        ('missing checkpoint', str(tmp_path / 'nowhere.pth'), new, FileNotFoundError,
         r'checkpoint not found: .*nowhere\.pth'),
        ('truncated checkpoint', str(truncated), new, RuntimeError,
         r'iter_8\.pth is not a readable checkpoint .*truncated or corrupt'),
        ('checkpoint of another config', str(other_config), new, 'CheckpointMismatchError',
         r'fcn_20_classes\.pth does not fit this CORASegmentor: \d+ of its \d+ weights are not '
         r'in the model'),
        ('OUT holds another export', checkpoint, str(other_export), FileExistsError,
         r'OUT .*other_export already holds another export \(.*other_export/export\.json: of '
         r'/runs/b/iter_600\.pth \(sha256 abababababab\.\.\.\).*pass --overwrite'),
        ('OUT holds something else', checkpoint, str(not_an_export), FileExistsError,
         r'OUT .*results is not empty and holds no readable export\.json'),
    ]


EXPORT_ROW_IDS = [
    'missing checkpoint', 'truncated checkpoint', 'checkpoint of another config',
    'OUT holds another export', 'OUT holds something else'
]


@pytest.mark.parametrize('row', EXPORT_ROW_IDS)
def test_export_refuses(tmp_path, cora_export, row):
    from mmcora.apis.export import export_cora
    from mmcora.engine import CheckpointMismatchError
    _, checkpoint, out, error, message = next(
        r for r in _export_rows(tmp_path, cora_export) if r[0] == row)
    error = CheckpointMismatchError if error == 'CheckpointMismatchError' else error
    before = sorted(glob.glob(osp.join(out, '**'), recursive=True))
    with pytest.raises(error, match=message):
        export_cora(cora_export['config'], checkpoint, out)
    assert sorted(glob.glob(osp.join(out, '**'), recursive=True)) == before  # nothing written
    assert not glob.glob(osp.join(tmp_path, '.*.partial-*'))


def _damage(directory, how):
    """Break a copy of an export: remove or cut short one of its files."""
    path = osp.join(directory, how.split(' ', 1)[1])
    if how.startswith('remove'):
        os.remove(path)
    else:
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    return path


LOAD_ROWS = [
    # (damage, exception, message): loading a damaged export names the file
    ('remove export.json', FileNotFoundError,
     r'damaged/export\.json not found: .*damaged is not a complete export of tools/export_hf\.py'),
    ('remove heads.safetensors', FileNotFoundError,
     r'damaged/heads\.safetensors is missing from the export .*damaged'),
    ('remove llava/model.safetensors', FileNotFoundError,
     r'damaged/llava/model\.safetensors is missing from the export'),
    ('cut heads.safetensors', ValueError,
     r'damaged/heads\.safetensors has \d+ bytes, export\.json says \d+: the file was cut short'),
    ('remove config.py', FileNotFoundError, r'damaged/config\.py is missing from the export'),
]


@pytest.mark.parametrize('how, error, message', LOAD_ROWS, ids=[row[0] for row in LOAD_ROWS])
@pytest.mark.parametrize('entry', ['inferencer', 'tools/test.py'])
def test_damaged_export_is_refused_naming_the_file(tmp_path, cora_export, how, error, message,
                                                   entry, monkeypatch):
    import shutil
    import sys
    damaged = str(tmp_path / 'damaged')
    shutil.copytree(cora_export['out'], damaged)
    _damage(damaged, how)
    with pytest.raises(error, match=message):
        if entry == 'inferencer':
            from mmcora.apis import ReasoningSegInferencer
            ReasoningSegInferencer(damaged)
        else:
            from .conftest import load_tool
            monkeypatch.setattr(sys, 'argv', ['tools/test.py', damaged])
            load_tool('tools/test.py').main()


def test_truncated_safetensors_checkpoint_names_the_file(tmp_path):
    from mmengine.runner import CheckpointLoader

    from mmcora.engine.safe_checkpoint import save_safetensors_checkpoint
    good = tmp_path / 'good.safetensors'
    save_safetensors_checkpoint(dict(w=torch.zeros(1000)), dict(a=1), str(good))
    assert CheckpointLoader.load_checkpoint(str(good))['meta'] == dict(a=1)
    bad = tmp_path / 'heads.safetensors'
    bad.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(
            RuntimeError,
            match=r'heads\.safetensors is not a readable safetensors checkpoint .*truncated'):
        CheckpointLoader.load_checkpoint(str(bad), map_location='cpu')


def test_tools_test_without_checkpoint_needs_an_export(monkeypatch, small_toy_config):
    import sys

    from .conftest import load_tool
    monkeypatch.setattr(sys, 'argv', ['tools/test.py', small_toy_config])
    with pytest.raises(
            SystemExit,
            match=r'CHECKPOINT is needed with .*small_toy\.py \(only an '
            'export of tools/export_hf.py names its own weights\\)'):
        load_tool('tools/test.py').main()


def test_export_with_another_llava_is_refused_naming_the_heads(tmp_path, cora_export):
    """Sizes cannot tell one export's llava/ from another's (same architecture): the heads'
    fingerprints of the weights they go with do."""
    import shutil

    from safetensors.torch import load_file, save_file

    from mmcora.apis import ReasoningSegInferencer
    from mmcora.engine import CheckpointMismatchError
    mixed = tmp_path / 'mixed'
    shutil.copytree(cora_export['out'], mixed)
    weights = mixed / 'llava' / 'model.safetensors'
    tensors = load_file(str(weights))
    name = sorted(k for k in tensors if 'lm_head' in k)[0]
    tensors[name] = tensors[name] + 1  # another training's token rows
    save_file(tensors, str(weights), metadata={'format': 'pt'})
    assert weights.stat().st_size == (
        osp.getsize(osp.join(cora_export['out'], 'llava', 'model.safetensors')))
    with pytest.raises(
            CheckpointMismatchError,
            match=r'mixed/heads\.safetensors holds only trained weights, and 1 of the \d+ '
            r'frozen base tensors of this model are not the ones they were trained on '
            r'\(first: mllm\.model\.lm_head\.weight'):
        ReasoningSegInferencer(str(mixed))


def test_llava_config_of_another_tokenizer_is_named(tmp_path):
    # config.json's image token id must be the id the tokenizer gives <image> (a config.json
    # copied from another LLaVA made a bare '32000 is not in list')
    import json

    from mmcora.models.mllm import LlavaMLLM, write_tiny_llava
    path = tmp_path / 'llava'
    write_tiny_llava(str(path))
    config = json.loads((path / 'config.json').read_text())
    config['image_token_index'] = 32000  # llava-1.5-7b-hf's
    (path / 'config.json').write_text(json.dumps(config))
    with pytest.raises(
            ValueError,
            match=rf"{re.escape(str(path))}: config\.json's image_token_index is "
            r'32000, but the tokenizer gives <image> the id \d+: the tokenizer and '
            r'config\.json are not of the same LLaVA'):
        LlavaMLLM(str(path))
