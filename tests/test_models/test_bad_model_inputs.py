"""Bad model inputs fail before anything large loads, naming the config key and the path.

Every test here patches the Hugging Face loaders to fail (``no_loading``): an error must come
from the checks, never from a load. (A Qwen2.5-VL or LLaVA directory without ``config.json``
would otherwise build and allocate a full-size model of the default config.)
"""
import json
import re
import shutil

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from safetensors import safe_open
from safetensors.torch import load_file

import mmcora  # noqa: F401
from mmcora.models.mllm import LlavaMLLM, ensure_tiny_llava
from mmcora.models.pretrained import check_hf_directory, check_model_paths
from mmcora.models.segzero import QwenReasoner, SAM2Segmenter

LOADERS = ('AutoTokenizer', 'AutoProcessor', 'CLIPImageProcessor', 'LlavaForConditionalGeneration',
           'Qwen2_5_VLForConditionalGeneration', 'Sam2Model', 'Sam2Processor')
MISSING_SAM = 'checkpoints/no-such-sam_vit_h.pth'


@pytest.fixture
def no_loading(monkeypatch):
    """Make every Hugging Face ``from_pretrained`` the models use fail loudly."""
    import transformers

    def refuse(cls, *args, **kwargs):
        raise AssertionError(f'{cls.__name__}.from_pretrained ran before the checks failed')

    for name in LOADERS:
        monkeypatch.setattr(getattr(transformers, name), 'from_pretrained', classmethod(refuse))


@pytest.fixture(scope='module')
def llava_dir(tmp_path_factory) -> str:
    return ensure_tiny_llava(str(tmp_path_factory.mktemp('llava') / 'tiny-llava'))


# ----------------------------------------------------------------- Hugging Face directories
def _split_in_two(folder, second=None) -> None:
    """Make ``folder`` a two-shard directory: the weights become shard 1 and the index names
    a shard 2 for one tensor; ``second`` (bytes) is written as shard 2 if given."""
    weights = folder / 'model.safetensors'
    with safe_open(str(weights), 'pt') as f:
        names = sorted(f.keys())
    first, last = 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'
    weights.rename(folder / first)
    weight_map = {name: first for name in names[1:]}
    weight_map[names[0]] = last
    (folder / 'model.safetensors.index.json').write_text(
        json.dumps(dict(metadata={}, weight_map=weight_map)))
    if second is not None:
        (folder / last).write_bytes(second)


def _broken(source: str, defect: str, tmp_path) -> str:
    """A copy of the good directory ``source`` with one defect; its path."""
    if defect == 'missing':
        return str(tmp_path / 'no-such-model')
    if defect == 'file':
        shutil.copy(f'{source}/model.safetensors', tmp_path / 'model.safetensors')
        return str(tmp_path / 'model.safetensors')
    folder = tmp_path / 'model'
    shutil.copytree(source, folder)
    weights = folder / 'model.safetensors'
    half = weights.read_bytes()[:weights.stat().st_size // 2]
    if defect == 'no config':
        (folder / 'config.json').unlink()
    elif defect == 'bad config':
        text = (folder / 'config.json').read_text()
        (folder / 'config.json').write_text(text[:len(text) // 2])
    elif defect == 'no weights':
        weights.unlink()
    elif defect == 'missing shard':
        _split_in_two(folder)
    elif defect == 'truncated shard':
        _split_in_two(folder, half)
    elif defect == 'truncated':
        weights.write_bytes(half)
    elif defect == 'truncated bin':
        torch.save(load_file(str(weights)), folder / 'pytorch_model.bin')
        weights.unlink()
        data = (folder / 'pytorch_model.bin').read_bytes()
        (folder / 'pytorch_model.bin').write_bytes(data[:len(data) // 2])
    else:
        raise ValueError(defect)
    return str(folder)


# defect -> (exception, message; {key}, {what} and {path} are filled in, already escaped)
DEFECTS = {
    'missing': (FileNotFoundError, '{key}: {what} directory not found: {path}'),
    'file': (FileNotFoundError, '{key}: {path} is a file, not a {what} directory'),
    'no config': (FileNotFoundError, r'{key}: {path} has no config\.json'),
    'bad config': (ValueError, r'{key}: {path}/config\.json is not valid JSON'),
    'no weights': (FileNotFoundError, r'{key}: {path} has config\.json but no {what} weights'),
    'missing shard':
    (FileNotFoundError, r'{key}: {path} is incomplete: 1 of 2 weight shards named by '
     r'model\.safetensors\.index\.json are missing, first: model-00002-of-00002\.safetensors'),
    'truncated shard': (ValueError, r'{key}: {what} weights {path}/model-00002-of-00002\.'
                        r'safetensors are truncated or corrupt \(\d+ bytes, its header'),
    'truncated': (ValueError, r'{key}: {what} weights {path}/model\.safetensors are truncated '
                  r'or corrupt'),
    'truncated bin': (ValueError, r'{key}: {what} weights {path}/pytorch_model\.bin are '
                      r'truncated or corrupt'),
}
# loader -> (the fixture of a good directory, the config key, the model's name)
MODELS_BY_NAME = {
    'LlavaMLLM': (LlavaMLLM, 'llava_dir', 'model.mllm.pretrained', 'LLaVA'),
    'QwenReasoner': (QwenReasoner, 'qwen_dir', 'model.reasoner.pretrained', 'Qwen2.5-VL'),
    'SAM2Segmenter': (SAM2Segmenter, 'sam2_dir', 'model.segmenter.pretrained', 'SAM 2'),
}


@pytest.mark.parametrize('defect', list(DEFECTS))
@pytest.mark.parametrize('loader', list(MODELS_BY_NAME))
def test_bad_pretrained_directory_is_named_before_loading(loader, defect, request, tmp_path,
                                                          no_loading):
    cls, fixture, key, what = MODELS_BY_NAME[loader]
    path = _broken(request.getfixturevalue(fixture), defect, tmp_path)
    error, message = DEFECTS[defect]
    with pytest.raises(error) as info:
        cls(pretrained=path)
    pattern = message.format(key=re.escape(key), what=re.escape(what), path=re.escape(path))
    assert re.search(pattern, str(info.value)), str(info.value)


def test_complete_directories_pass(qwen_dir, sam2_dir, llava_dir, tmp_path):
    """No false alarm on what save_pretrained writes, sharded or not."""
    from transformers import Sam2Model
    for path in (qwen_dir, sam2_dir, llava_dir):
        check_hf_directory(path, 'model.x.pretrained', 'X')
    sharded = tmp_path / 'sharded'
    Sam2Model.from_pretrained(sam2_dir).save_pretrained(sharded, max_shard_size='100KB')
    assert len(list(sharded.glob('model-*-of-*.safetensors'))) > 1
    check_hf_directory(str(sharded), 'model.x.pretrained', 'X')
    first = sorted(sharded.glob('model-*-of-*.safetensors'))[0]
    first.unlink()
    with pytest.raises(FileNotFoundError, match=f'first: {re.escape(first.name)}'):
        check_hf_directory(str(sharded), 'model.x.pretrained', 'X')


@pytest.mark.parametrize(
    'cfg', [
        dict(type='QwenReasoner', pretrained='checkpoints/not-yet', tiny=dict()),
        dict(type='SAM2Segmenter', pretrained='checkpoints/not-yet', tiny=dict()),
        dict(type='LlavaMLLM', pretrained='checkpoints/not-yet', tiny=dict()),
    ],
    ids=['tiny Qwen', 'tiny SAM 2', 'tiny LLaVA'])
def test_directories_a_tiny_option_writes_are_not_checked_in_advance(cfg):
    init_default_scope('mmseg')
    check_model_paths(cfg, 'model.x')  # written on build: nothing to find yet


# ----------------------------------------------------------------- a segmentor's second model
def _segzero(qwen_dir, segmenter):
    return dict(
        type='SegZeroSegmentor',
        reasoner=dict(type='QwenReasoner', pretrained=qwen_dir),
        segmenter=segmenter)


def _cora(llava_dir, **options):
    cfg = dict(
        type='CORASegmentor',
        mllm=dict(type='LlavaMLLM', pretrained=llava_dir),
        sam=dict(type='SAMWrapper', tiny=dict()))
    cfg.update(options)
    return cfg


@pytest.mark.parametrize(
    'make, error, message', [
        (lambda q, v, t: _segzero(q, dict(type='SAM2Segmenter', pretrained=str(t / 'no-sam2'))),
         FileNotFoundError, 'model.segmenter.pretrained: SAM 2 directory not found: .*no-sam2'),
        (lambda q, v, t: _segzero(q, dict(type='SAMPromptSegmenter', checkpoint=MISSING_SAM)),
         FileNotFoundError,
         f'model.segmenter.checkpoint: SAM checkpoint not found: {re.escape(MISSING_SAM)}'),
        (lambda q, v, t: _cora(v, sam=dict(type='SAMWrapper', checkpoint=MISSING_SAM)),
         FileNotFoundError,
         f'model.sam.checkpoint: SAM checkpoint not found: {re.escape(MISSING_SAM)}'),
        (lambda q, v, t: _cora(v, sam=dict(type='SAMWrapper', checkpoint=str(t))),
         FileNotFoundError, 'model.sam.checkpoint: SAM checkpoint is a directory, not a file'),
    ],
    ids=[
        'Seg-Zero SAM 2 dir', 'Seg-Zero SAM checkpoint', 'CORA SAM checkpoint',
        'CORA SAM checkpoint is a folder'
    ])
def test_second_model_path_fails_before_the_first_model_loads(make, error, message, qwen_dir,
                                                              llava_dir, tmp_path, no_loading):
    init_default_scope('mmseg')
    with pytest.raises(error, match=message):
        MODELS.build(make(qwen_dir, llava_dir, tmp_path))


# ----------------------------------------------------------------- CORA's options
@pytest.mark.parametrize(
    'options, error, message', [
        (dict(test_cfg=dict(max_new_token=32)), KeyError,
         r"unknown model.test_cfg keys \['max_new_token'\]; expected some of "
         r"\['answer', 'max_new_tokens', 'mode'\]"),
        (dict(test_cfg=dict(mode='greedy')), ValueError,
         "model.test_cfg.mode must be 'teacher_forcing' or 'generate', got 'greedy'"),
        (dict(test_cfg=dict(answer='Sure.')), ValueError,
         r"model.test_cfg.answer must contain \[SEG\], got 'Sure.'"),
        (dict(test_cfg=dict(max_new_tokens=0)), ValueError,
         'model.test_cfg.max_new_tokens must be an integer >= 1, got 0'),
        (dict(train_cfg=dict(mode='sft')), TypeError, "unexpected keyword argument 'train_cfg'"),
        (dict(type='SemiCORASegmentor',
              test_cfg=dict(mod='generate')), KeyError, r"unknown model.test_cfg keys \['mod'\]"),
        (dict(
            type='SemiCORASegmentor', loss_pseudo=dict(type='VarianceWeightedLoss', maping='none')),
         TypeError, "unexpected keyword argument 'maping'"),
        (dict(
            type='SemiCORASegmentor',
            loss_pseudo=dict(type='VarianceWeightedLoss', mapping='stabilty')), ValueError,
         "mapping must be one of .*, got 'stabilty'"),
        (dict(type='SemiCORASegmentor',
              token_bank=None), ValueError, r'model.loss_token needs a model.token_bank'),
        (dict(loss_mask_dice=dict(type='MaskDiceLoss', loss_weigth=0.5)), TypeError,
         "unexpected keyword argument 'loss_weigth'"),
        (dict(mllm=dict(type='LlavaMLLM', pretrained='checkpoints/nowhere', toy_pretrain=dict())),
         ValueError, 'toy_pretrain pretrains a tiny LLaVA: give it with tiny'),
    ],
    ids=[
        'misspelled test_cfg key', 'unknown test mode', 'answer without SEG', 'no new tokens',
        'train_cfg', 'semi: misspelled test_cfg key', 'semi: misspelled loss_pseudo key',
        'semi: unknown mapping', 'semi: token loss without bank', 'misspelled loss key',
        'toy LLaVA without tiny'
    ])
def test_cora_options_are_checked_before_llava_loads(options, error, message, llava_dir,
                                                     no_loading):
    init_default_scope('mmseg')
    with pytest.raises(error, match=message):
        MODELS.build(_cora(llava_dir, **options))
