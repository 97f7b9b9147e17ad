"""tools/export_hf.py: a trained tiny CORA (LoRA made non-zero, a trainable-only checkpoint)
exported with its LoRA merged; the exported LLaVA, the inferencer and tools/test.py on the
export give what the config and checkpoint give (the export itself: ``cora_export`` in
tests/conftest.py; its bad-input rows are in tests/test_bad_inputs.py)."""
import copy
import glob
import json
import os.path as osp
import re
import sys

import numpy as np
import pytest
import torch

from ..conftest import run_tool

QUERIES = ['Segment the car.', 'Segment the road.', 'Segment the car left of the person <anchor>.']


@pytest.fixture(scope='module')
def image(toy_city_root):
    return osp.join(toy_city_root, 'leftImg8bit', 'val', 'frankfurt',
                    'frankfurt_000000_000019_leftImg8bit.png')


@pytest.fixture(scope='module')
def inferencers(cora_export):
    """The inferencer of the config + checkpoint and the one of the export directory."""
    from mmcora.apis import ReasoningSegInferencer
    source = ReasoningSegInferencer(cora_export['config'], cora_export['checkpoint'])
    return source, ReasoningSegInferencer(cora_export['out'])


def _anchor(image):
    import cv2
    anchor = np.zeros(cv2.imread(image).shape[:2], bool)
    anchor[70:100, 40:90] = True
    return anchor


def test_export_layout_and_meta(cora_export):
    out = cora_export['out']
    meta = json.load(open(osp.join(out, 'export.json')))
    assert meta['source']['checkpoint_sha256'] and meta['source']['trainable_only']
    assert meta['merged']['adapter_layers'] == 2 * 2  # q_proj and v_proj of the 2 tiny layers
    for name in ('config.py', 'heads.safetensors', 'llava/config.json', 'llava/tokenizer.json',
                 'llava/preprocessor_config.json'):
        assert name in meta['files'], name
    assert not osp.exists(osp.join(out, 'sam.pth'))  # SAM's base comes from its own file
    assert not glob.glob(osp.join(osp.dirname(out), '.exported.*'))  # no temporary left
    from safetensors import safe_open
    with safe_open(osp.join(out, 'heads.safetensors'), 'pt') as f:
        heads = set(f.keys())
    assert heads and all(not k.startswith(('mllm.', 'sam.image_encoder.')) for k in heads)
    assert {k.split('.')[0] for k in heads} >= {'sam', 'projector', 'anchor_encoder'}
    assert any(k.startswith('sam.mask_decoder.') for k in heads)
    assert any(k.startswith('sam.prompt_encoder.') for k in heads)
    text = open(osp.join(out, 'config.py')).read()
    assert "tokenization='separate'" in text and 'lora=None' in text


def test_exported_llava_equals_the_unmerged_model(cora_export):
    from peft.tuners.tuners_utils import BaseTunerLayer
    from transformers import AutoTokenizer, LlavaForConditionalGeneration
    mllm = cora_export['model'].mllm
    exported = LlavaForConditionalGeneration.from_pretrained(osp.join(cora_export['out'],
                                                                      'llava')).eval()
    tokenizer = AutoTokenizer.from_pretrained(osp.join(cora_export['out'], 'llava'))
    assert tokenizer.convert_tokens_to_ids('[SEG]') == mllm.seg_token_id
    tokens = mllm.tokenize(['Segment the car.'], ['It is [SEG].'], torch.device('cpu'))
    ids = torch.cat([mllm.prefix_ids(torch.device('cpu')), tokens.ids[0]])[None]
    pixels = torch.randn(
        1, 3, mllm.image_size, mllm.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        merged = exported(input_ids=ids, pixel_values=pixels).logits
        unmerged = mllm.model(input_ids=ids, pixel_values=pixels).logits
        without_lora = copy.deepcopy(mllm.model)
        for module in without_lora.modules():
            if isinstance(module, BaseTunerLayer):
                module.enable_adapters(False)
        base = without_lora(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-5)
    assert (base - unmerged).abs().max() > 1e-3  # the LoRA mattered: the merge is tested


def test_seg_states_and_masks_equal_the_source(inferencers, image):
    source, exported = inferencers
    anchors = [None, None, _anchor(image)]
    results = [inf(image, QUERIES, anchors=anchors, draw=False) for inf in inferencers]
    assert results[0]['masks'].any() and not results[0]['masks'].all()
    assert np.array_equal(results[0]['masks'], results[1]['masks'])
    features = source._features
    sample = source._run_pipeline(QUERIES, [None, None, _anchor(image)])['data_samples'][0]
    states = []
    for inf in inferencers:  # the [SEG] hidden states the mask decoder is prompted with
        model = inf.model
        texts, answers, index, _ = model.gather_queries([sample], model.test_cfg['answer'])
        tokens = model.mllm.tokenize(texts, answers, index.device)
        with torch.no_grad():
            _, seg, found = model.mllm.forward_full(features[1], index, tokens,
                                                    model.anchor_embeds([sample], len(texts)))
        assert bool(found.all())
        states.append(seg)
    torch.testing.assert_close(states[0], states[1], rtol=1e-4, atol=1e-5)
    generated = []
    for inf in inferencers:  # free generation: the same answers, the same masks
        inf.mode = 'generate'
        try:
            generated.append(inf(image, QUERIES[:2], draw=False))
        finally:
            inf.mode = None
    assert generated[0]['texts'] == generated[1]['texts']
    assert np.array_equal(generated[0]['masks'], generated[1]['masks'])


def test_inferencer_takes_the_config_of_an_export(cora_export, inferencers, image):
    from mmcora.apis import ReasoningSegInferencer
    by_config = ReasoningSegInferencer(osp.join(cora_export['out'], 'config.py'))
    for name, value in inferencers[1].model.state_dict().items():
        assert torch.equal(by_config.model.state_dict()[name], value), name


def _metrics(work_dir):
    log = open(sorted(glob.glob(osp.join(work_dir, '*', '*.log')))[-1]).read()
    return re.findall(r'reason/\S+: [\d.]+', log)


def test_tools_test_gives_the_metrics_of_config_and_checkpoint(cora_export, tmp_path):
    source, exported = str(tmp_path / 'source'), str(tmp_path / 'exported')
    run_tool([
        sys.executable, 'tools/test.py', cora_export['config'], cora_export['checkpoint'],
        '--work-dir', source
    ])
    run_tool([sys.executable, 'tools/test.py', cora_export['out'], '--work-dir', exported])
    assert _metrics(source) and _metrics(source) == _metrics(exported)


def test_export_again_replaces_the_same_export_and_another_with_overwrite(cora_export, tmp_path):
    import shutil

    from ..conftest import load_tool
    out = tmp_path / 'again'
    shutil.copytree(cora_export['out'], out)
    (out / 'stale.txt').write_text('left by someone')
    meta = json.load(open(out / 'export.json'))
    tool = load_tool('tools/export_hf.py')
    args = [cora_export['config'], cora_export['checkpoint'], str(out)]
    assert tool.main(args)['files'] == meta['files'] and not (out / 'stale.txt').exists()
    meta['source']['checkpoint_sha256'] = '0' * 64  # another checkpoint's export
    (out / 'export.json').write_text(json.dumps(meta))
    with pytest.raises(FileExistsError, match='already holds another export'):
        tool.main(args)
    assert tool.main(args + ['--overwrite'])['source'] == json.load(
        open(osp.join(cora_export['out'], 'export.json')))['source']


def _source_model(tmp_path, base, mllm=''):
    """A config on ``base`` with the tiny LLaVA written in ``tmp_path`` (``mllm``: more of its
    options) and a random SAM, and its model built as the runner builds it
    (``randomness.seed`` set first), every trained weight moved."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from mmseg.registry import MODELS
    config = tmp_path / 'source.py'
    config.write_text(f'_base_ = [{base!r}]\nmodel = dict(mllm=dict(pretrained='
                      f'{str(tmp_path / "tiny-llava")!r}, toy_pretrain=None{mllm}), '
                      'sam=dict(toy_pretrain=None))\n')
    init_default_scope('mmseg')
    set_random_seed(Config.fromfile(str(config)).randomness.seed)
    model = MODELS.build(Config.fromfile(str(config)).model).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator).to(param.dtype) * 0.05)
    return str(config), model


def _save(model, path, trainable_only):
    from types import SimpleNamespace

    from mmengine.runner.checkpoint import weights_to_cpu

    from mmcora.engine import TrainableCheckpointHook
    checkpoint = dict(meta=dict(iter=2), state_dict=weights_to_cpu(model.state_dict()))
    if trainable_only:
        TrainableCheckpointHook().before_save_checkpoint(SimpleNamespace(model=model), checkpoint)
    torch.save(checkpoint, path)
    return str(path)


def _masks(model_or_dir, image, cfg=None):
    from mmcora.apis import ReasoningSegInferencer
    inferencer = ReasoningSegInferencer(model_or_dir, cfg=cfg)
    return inferencer(image, QUERIES, anchors=[None, None, _anchor(image)], draw=False)['masks']


def test_a_random_sam_base_goes_into_the_export(tmp_path, image):
    """No SAM file to name (random tiny weights, a trainable-only checkpoint): the export
    writes SAM's weights as OUT/sam.pth and its config loads them from there."""
    from mmcora.apis.export import export_cora
    from ..conftest import CORA_TOY_CONFIG
    config, model = _source_model(tmp_path, CORA_TOY_CONFIG)
    checkpoint = _save(model, tmp_path / 'iter_2.pth', trainable_only=True)
    meta = export_cora(config, checkpoint, str(tmp_path / 'out'))
    assert 'sam.pth' in meta['files'] and meta['source']['trainable_only']
    assert "checkpoint='{{ fileDirname }}/sam.pth'" in open(tmp_path / 'out' / 'config.py').read()
    assert np.array_equal(_masks(model, image, cfg=config), _masks(str(tmp_path / 'out'), image))


def test_semi_model_in_bfloat16_exports_as_cora(tmp_path, image):
    """The paper-size dtype: the exported bf16 LLaVA reloads to exactly the exported weights
    (the heads' fingerprints check it); the semi-only state is left out."""
    from mmcora.apis import ReasoningSegInferencer
    from mmcora.apis.export import export_cora
    from ..conftest import REPO
    semi = osp.join(REPO, 'configs', 'cora', 'cora-semi_tiny_3x600_toy-city-1-30.py')
    config, model = _source_model(tmp_path, semi, mllm=", dtype='bfloat16'")
    model.consistency_snapshot.take(model)
    meta = export_cora(config, _save(model, tmp_path / 'full.pth', False), str(tmp_path / 'out'))
    assert {'token_bank', 'consistency_snapshot'} <= set(meta['dropped'])
    exported = ReasoningSegInferencer(str(tmp_path / 'out'))
    assert type(exported.model).__name__ == 'CORASegmentor'
    assert exported.model.mllm.compute_dtype == torch.bfloat16
    text = open(tmp_path / 'out' / 'config.py').read()
    assert 'TokenBankHook' not in text and "dtype='bfloat16'" in text
    source, ours = _masks(model, image, cfg=config), _masks(str(tmp_path / 'out'), image)
    # bf16 rounds the merged weights once: nearly all pixels agree
    assert (source == ours).mean() > 0.98, (source == ours).mean()


def test_added_token_rows_merge_into_the_export(tmp_path, image):
    """train_token_embeddings='added': peft's trainable-token deltas are merged into the
    exported embed_tokens and lm_head rows, as the LoRA into its layers."""
    from mmcora.apis.export import export_cora
    from ..conftest import CORA_TOY_CONFIG
    config, model = _source_model(
        tmp_path, CORA_TOY_CONFIG, mllm=", train_token_embeddings='added'")
    assert any('trainable_tokens_delta' in n for n, _ in model.named_parameters())
    checkpoint = _save(model, tmp_path / 'iter_2.pth', trainable_only=True)
    meta = export_cora(config, checkpoint, str(tmp_path / 'out'))
    assert {'model.language_model.embed_tokens', 'lm_head'} <= set(meta['merged']['layers'])
    assert np.array_equal(_masks(model, image, cfg=config), _masks(str(tmp_path / 'out'), image))


def test_a_failed_export_leaves_nothing_that_looks_complete(cora_export, tmp_path, monkeypatch):
    from mmcora.apis import export

    def disk_full(*args, **kwargs):
        raise OSError('No space left on device')

    monkeypatch.setattr(export, 'save_safetensors_checkpoint', disk_full)
    with pytest.raises(OSError, match='No space left'):
        export.export_cora(cora_export['config'], cora_export['checkpoint'], str(tmp_path / 'out'))
    assert not osp.exists(tmp_path / 'out') and not glob.glob(str(tmp_path / '.*'))
