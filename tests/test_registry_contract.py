"""timm's rule for the registry: every component mmcora adds to mmseg's registries is built
from config by one row of this table and keeps its registry's contract; a name registered
without a row fails the coverage test, so a new component cannot land untested."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.dataset import BaseDataset, ConcatDataset
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmseg import registry
from mmseg.registry import TRANSFORMS

from .conftest import REPO

REGISTRIES = ('MODELS', 'TRANSFORMS', 'DATASETS', 'METRICS', 'HOOKS', 'DATA_SAMPLERS', 'LOOPS')
TOY_REASONING = osp.join(REPO, 'configs', '_base_', 'datasets', 'toy_city_reasoning.py')
TOY_FCN = osp.join(REPO, 'configs', 'toy', 'fcn_r18-tiny_toy-city-1-30.py')
UNIMATCH = osp.join(REPO, 'configs', 'unimatch', 'unimatch_fcn-r18-tiny_toy-city-1-30.py')
CORA_TINY = osp.join(REPO, 'configs', '_base_', 'models', 'cora_tiny.py')
SEMI_CORA = osp.join(REPO, 'configs', 'cora', 'cora-semi_tiny_3x600_toy-city-1-30.py')

_PROBE = '''
import json
from mmseg import registry
from mmseg.registry import TRANSFORMS
from mmseg.utils import register_all_modules
register_all_modules(init_default_scope=False)
names = {r: set(getattr(registry, r).module_dict) for r in %r}
import mmcora  # noqa: F401
from mmcora.registry import REWARDS
added = {r: sorted(set(getattr(registry, r).module_dict) - names[r]) for r in names}
added['REWARDS'] = sorted(REWARDS.module_dict)  # mmcora's own registry: every name is ours
print(json.dumps(added))
'''


def registry_of(name: str):
    """mmseg's registry of that name, or mmcora's own (``REWARDS``)."""
    if name == 'REWARDS':
        from mmcora.registry import REWARDS
        return REWARDS
    return getattr(registry, name)


def registered_by_mmcora():
    """Registry -> names that ``import mmcora`` adds, from a fresh interpreter."""
    out = subprocess.run([sys.executable, '-c', _PROBE % (REGISTRIES, )],
                         check=True,
                         capture_output=True,
                         text=True,
                         cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- configs of each row
def _toy_dataset(ctx, config, split='val'):
    cfg = Config.fromfile(config)[f'{split}_dataloader']['dataset']
    cfg.update(data_root=ctx['toy_city_root'], toy_city=ctx['toy_city_spec'])
    return cfg.to_dict()


def _pannuke(ctx):
    from mmcora.datasets.pannuke import convert_pannuke
    from tests.test_datasets.test_pannuke import FOLD_TISSUES, write_fold
    src, dst = ctx['tmp'] / 'pannuke_src', ctx['tmp'] / 'pannuke'
    for fold, tissues in FOLD_TISSUES.items():
        write_fold(src, fold, tissues)
    convert_pannuke(str(src), str(dst), folds=(1, 2, 3), train_fold=1, seed=0)
    return dict(
        type='PanNukeDataset',
        data_root=str(dst),
        ann_file='splits/fold1/all.txt',
        data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])


def _reasonseg(ctx):
    from tests.test_datasets.test_reasonseg import PIPELINE, _rect, _shape, _write
    root = ctx['tmp'] / 'reasonseg'
    _write(root / 'val', 'a', [_shape('target', _rect(5, 5, 30, 30))], ['the cup'], False)
    return dict(type='ReasonSegDataset', data_root=str(root), split='val', pipeline=PIPELINE)


def _semi_reasoning(ctx):
    from mmcora.datasets import read_name_list
    from tests.test_datasets.test_semi_reasoning import PIPELINE, write_pseudo
    root, out = ctx['toy_city_root'], str(ctx['tmp'] / 'pseudo')
    write_pseudo(root, out, read_name_list(f'{root}/splits/1_30/unlabeled.txt'))
    return dict(
        type='SemiReasoningDataset',
        ann_file='splits/1_30/unlabeled.txt',
        data_root=root,
        pseudo_dir=out,
        pipeline=PIPELINE)


def _pseudo_transforms(obj, ctx):
    """LoadPseudoLabel then SamplePseudoQueries on a hand-made pseudo-label."""
    import cv2
    path = str(ctx['tmp'] / 'one_pseudo.png')
    label = np.zeros((8, 12), np.uint8)
    label[:, 6:] = 13
    cv2.imwrite(path, label)
    results = dict(
        img=np.zeros((8, 12, 3), np.uint8),
        img_path='x.png',
        pseudo_path=path,
        conf_path=None,
        num_classes=19)
    results = TRANSFORMS.build(dict(type='LoadPseudoLabel'))(results)
    results.update(
        query_bank={
            'road': list('abcdefg'),
            'car': list('hijklmn')
        },
        sample_class_ids=(0, 13),
        sample_class_names=('road', 'car'))
    results = TRANSFORMS.build(dict(type='SamplePseudoQueries', num_queries=7))(results)
    assert type(obj).__name__ in ('LoadPseudoLabel', 'SamplePseudoQueries', 'CorruptPseudoMask')
    assert len(results['consistency_queries']) == 6 and results['gt_masks'].shape == (1, 8, 12)
    assert results['gt_masks'].sum() == 48
    drawn = results['queries'][0]['class_id']
    results = TRANSFORMS.build(dict(type='CorruptPseudoMask', ratio=1.0))(results)
    assert results['mask_corrupted']  # the other class's half, under the same query
    assert (results['gt_masks'][0] == (label != drawn)).all()


def _cora(ctx):
    model = Config.fromfile(CORA_TINY)['model']
    model['mllm']['pretrained'] = ctx['llava']
    return model.to_dict()


def _semi_cora(ctx):
    model = Config.fromfile(SEMI_CORA)['model']
    model['mllm'].update(pretrained=ctx['llava'], toy_pretrain=None)
    model['sam'] = dict(type='SAMWrapper', tiny=dict(img_size=256))
    return model.to_dict()


def _staged_loop(ctx):
    from types import SimpleNamespace

    from torch.utils.data import DataLoader
    runner = SimpleNamespace(visualizer=SimpleNamespace(dataset_meta=None))
    return dict(
        type='CORAStagedTrainLoop',
        runner=runner,
        dataloader=DataLoader(list(range(4))),
        stages=[
            dict(name='semantic', iters=3),
            dict(name='conditional', iters=0),
            dict(name='unlabeled', iters=2)
        ])


def _stages_check(obj, ctx):
    assert obj.max_iters == 5 and obj.boundaries == [(0, 3), (3, 3), (3, 5)]
    assert [obj.stage_at(i) for i in range(5)] == [0, 0, 0, 2, 2]


def _random_state_check(obj, ctx):
    checkpoint = {}
    obj.before_save_checkpoint(None, checkpoint)
    drawn = torch.rand(3)
    obj.after_load_checkpoint(None, checkpoint)
    obj.before_train_iter(None, 0)
    assert torch.equal(torch.rand(3), drawn)


def _bank_check(obj, ctx):
    obj.push(torch.randn(5, 4), torch.tensor([0, 1, 1, 2, 2]))
    tokens, classes = obj.contents()
    assert tokens.shape == (5, 4) and classes.tolist() == [0, 1, 1, 2, 2]


def _unimatch(ctx, kind='UniMatch'):
    return dict(Config.fromfile(UNIMATCH)['model'].to_dict(), type=kind)


def _sampler(ctx):
    from mmseg.registry import DATASETS
    source = DATASETS.build(_toy_dataset(ctx, TOY_FCN))
    return dict(
        type='MultiSourceSampler',
        dataset=ConcatDataset([source, source]),
        batch_size=4,
        source_ratio=[1, 1],
        seed=0)


# ---------------------------------------------------------------- contracts
def _is(kind):

    def check(obj, ctx):
        assert isinstance(obj, kind), type(obj)

    return check


def _module_call(inputs, shape):

    def check(obj, ctx):
        assert tuple(obj(*inputs).shape) == shape

    return check


def _loss(*inputs):

    def check(obj, ctx):
        value = obj(*inputs)
        assert value.ndim == 0 and torch.isfinite(value) and value > 0

    return check


def _attr(name, value):

    def check(obj, ctx):
        assert getattr(obj, name) == value, (name, getattr(obj, name))

    return check


def _dataset_item(obj, ctx):
    assert isinstance(obj, BaseDataset) and len(obj) > 0
    item = obj[0]
    assert set(item) >= {'inputs', 'data_samples'}


def _sampler_check(obj, ctx):
    indices = [i for _, i in zip(range(8), iter(obj))]
    assert len(indices) == 8 and all(0 <= i < len(obj.dataset) for i in indices)


LOGITS, TARGETS = torch.randn(2, 8, 8), (torch.rand(2, 8, 8) > 0.5).to(torch.uint8)
ROWS = {
    # name: (registry, config from ctx, contract check)
    'AnchorEncoder': ('MODELS', lambda c: dict(type='AnchorEncoder', clip_dim=8, hidden_size=16),
                      _module_call((torch.randn(3, 8), torch.rand(3, 4)), (3, 2, 16))),
    'SegTokenProjector': ('MODELS', lambda c: dict(type='SegTokenProjector', in_dim=16, out_dim=8),
                          _module_call((torch.randn(2, 16), ), (2, 8))),
    'MaskBCELoss': ('MODELS', lambda c: dict(type='MaskBCELoss'), _loss(LOGITS, TARGETS)),
    'MaskDiceLoss': ('MODELS', lambda c: dict(type='MaskDiceLoss'), _loss(LOGITS, TARGETS)),
    'VarianceWeightedLoss': ('MODELS', lambda c: dict(type='VarianceWeightedLoss'),
                             _loss(LOGITS, TARGETS, torch.rand(2, 8, 8))),
    'TokenContrastiveLoss':
    ('MODELS', lambda c: dict(type='TokenContrastiveLoss'),
     _loss(torch.randn(2, 8), torch.tensor([0, 1]), torch.randn(4, 8), torch.tensor([0, 1, 1, 2]))),
    'OhemCrossEntropyLoss': ('MODELS', lambda c: dict(type='OhemCrossEntropyLoss', min_kept=8),
                             _loss(torch.randn(1, 3, 8, 8), torch.randint(0, 3, (1, 8, 8)))),
    'ReasoningDataPreProcessor':
    ('MODELS', lambda c: dict(type='ReasoningDataPreProcessor', sam_size=256),
     _is(BaseDataPreprocessor)),
    'SemiSegDataPreProcessor': ('MODELS', lambda c: dict(type='SemiSegDataPreProcessor'),
                                _is(BaseDataPreprocessor)),
    'LlavaMLLM': ('MODELS', lambda c: dict(type='LlavaMLLM', pretrained=c['llava'], tiny=dict()),
                  _attr('num_image_tokens', 16)),
    'SAMWrapper': ('MODELS', lambda c: dict(type='SAMWrapper', tiny=dict(img_size=256)),
                   _attr('img_size', 256)),
    'CORASegmentor': ('MODELS', _cora, _is(BaseModel)),
    'UniMatch': ('MODELS', _unimatch, _is(BaseModel)),
    'SemiCORASegmentor': ('MODELS', _semi_cora, _is(BaseModel)),
    'TokenBank': ('MODELS', lambda c: dict(type='TokenBank', num_classes=3, dim=4), _bank_check),
    'TokenBankHook': ('HOOKS', lambda c: dict(type='TokenBankHook'), _is(Hook)),
    'RandomStateHook': ('HOOKS', lambda c: dict(type='RandomStateHook'), _random_state_check),
    'CORAStagedTrainLoop': ('LOOPS', _staged_loop, _stages_check),
    'UniMatchGTPseudoLabels': ('MODELS', lambda c: _unimatch(c, 'UniMatchGTPseudoLabels'),
                               _is(BaseModel)),
    'SampleQueries': ('TRANSFORMS', lambda c: dict(type='SampleQueries', num_queries=2),
                      _is(BaseTransform)),
    'LoadReasoningAnnotations': ('TRANSFORMS', lambda c: dict(type='LoadReasoningAnnotations'),
                                 _is(BaseTransform)),
    'LoadPseudoLabel': ('TRANSFORMS', lambda c: dict(type='LoadPseudoLabel'), _pseudo_transforms),
    'SamplePseudoQueries':
    ('TRANSFORMS', lambda c: dict(type='SamplePseudoQueries'), _pseudo_transforms),
    'CorruptPseudoMask':
    ('TRANSFORMS', lambda c: dict(type='CorruptPseudoMask'), _pseudo_transforms),
    'SAMResize': ('TRANSFORMS', lambda c: dict(type='SAMResize', size=256), _is(BaseTransform)),
    'CLIPInputs': ('TRANSFORMS', lambda c: dict(type='CLIPInputs', size=56), _is(BaseTransform)),
    'PackReasoningInputs': ('TRANSFORMS', lambda c: dict(type='PackReasoningInputs'),
                            _is(BaseTransform)),
    'LoadEmptyAnnotations': ('TRANSFORMS', lambda c: dict(type='LoadEmptyAnnotations'),
                             _is(BaseTransform)),
    'StrongViews': ('TRANSFORMS', lambda c: dict(type='StrongViews'), _is(BaseTransform)),
    'PackSemiSegInputs': ('TRANSFORMS', lambda c: dict(type='PackSemiSegInputs', branch='unsup'),
                          _is(BaseTransform)),
    'ToyCityscapesDataset': ('DATASETS', lambda c: _toy_dataset(c, TOY_FCN), _dataset_item),
    'ReasoningSegDataset': ('DATASETS', lambda c: _toy_dataset(c, TOY_REASONING), _dataset_item),
    'PanNukeDataset': ('DATASETS', _pannuke, _dataset_item),
    'SemiReasoningDataset': ('DATASETS', _semi_reasoning, _dataset_item),
    'ReasonSegDataset': ('DATASETS', _reasonseg, _dataset_item),
    'ReasoningIoUMetric': ('METRICS', lambda c: dict(type='ReasoningIoUMetric'), _is(BaseMetric)),
    'DataFilesCheckHook': ('HOOKS', lambda c: dict(type='DataFilesCheckHook'), _is(Hook)),
    'CheckpointFitHook': ('HOOKS', lambda c: dict(type='CheckpointFitHook'), _is(Hook)),
    'TrainableCheckpointHook': ('HOOKS', lambda c: dict(type='TrainableCheckpointHook'), _is(Hook)),
    'ReasoningVisualizationHook': ('HOOKS', lambda c: dict(type='ReasoningVisualizationHook'),
                                   _is(Hook)),
    'MultiSourceSampler': ('DATA_SAMPLERS', _sampler, _sampler_check),
}


def _reward_check(reward, ctx):
    from mmcora.models.segzero import SegZeroTarget
    target = SegZeroTarget((10, 20, 60, 80), ((20, 30), (50, 70)))
    perfect = ('<think>it</think><answer>{"bbox": [10, 20, 60, 80], "points_1": [20, 30], '
               '"points_2": [50, 70]}</answer>')
    top = getattr(reward, 'maximum', 1.0)
    assert reward(perfect, target) == top > 0
    assert reward('no reply', target) == 0.0


for _name in ('ThinkFormatReward', 'AnswerFormatReward', 'BoxIoUReward', 'BoxL1Reward',
              'PointDistanceReward', 'SegZeroReward'):
    ROWS[_name] = ('REWARDS', lambda c, n=_name: dict(type=n), _reward_check)


def _segzero(ctx):
    return dict(
        type='SegZeroSegmentor',
        reasoner=dict(type='QwenReasoner', pretrained=ctx['qwen'], dtype='float32'),
        segmenter=dict(type='SAM2Segmenter', pretrained=ctx['sam2']))


def _segzero_pack_check(obj, ctx):
    results = dict(
        img=np.zeros((6, 10, 3), np.uint8),
        img_path='x.png',
        queries=[dict(text='the car', class_id=1)],
        gt_masks=np.ones((1, 6, 10), np.uint8))
    results = TRANSFORMS.build(dict(type='SegZeroInputs', canvas=84))(results)
    packed = TRANSFORMS.build(dict(type='PackSegZeroInputs'))(results)
    assert tuple(packed['inputs']['canvas'].shape) == (3, 84, 84)
    # pixel indices scale by canvas / size (the last pixel 9 -> round(9 * 8.4) = 76)
    assert packed['data_samples'].metainfo['segzero_targets'][0]['box'] == [0, 0, 76, 70]


ROWS.update({
    'QwenReasoner': ('MODELS', lambda c: dict(type='QwenReasoner', pretrained=c['qwen']),
                     _attr('temperature', 1.0)),
    'SAM2Segmenter': ('MODELS', lambda c: dict(type='SAM2Segmenter', pretrained=c['sam2']),
                      _attr('multimask_output', True)),
    'SAMPromptSegmenter':
    ('MODELS', lambda c: dict(type='SAMPromptSegmenter', tiny=dict(img_size=256)),
     _attr('multimask_output', True)),
    'SegZeroSegmentor': ('MODELS', _segzero, _is(BaseModel)),
    'SegZeroDataPreProcessor':
    ('MODELS', lambda c: dict(type='SegZeroDataPreProcessor'), _is(BaseDataPreprocessor)),
    'SegZeroInputs': ('TRANSFORMS', lambda c: dict(type='SegZeroInputs'), _segzero_pack_check),
    'PackSegZeroInputs':
    ('TRANSFORMS', lambda c: dict(type='PackSegZeroInputs'), _segzero_pack_check),
    'SegZeroMetric': ('METRICS', lambda c: dict(type='SegZeroMetric'), _is(BaseMetric)),
})


def test_every_registered_component_has_a_row():
    added = registered_by_mmcora()
    names = {(r, n) for r, ns in added.items() for n in ns}
    rows = {(r, n) for n, (r, _, _) in ROWS.items()}
    assert names == rows, dict(missing=sorted(names - rows), stale=sorted(rows - names))
    assert len(rows) == len(ROWS) == 55


@pytest.fixture(scope='module')
def ctx(tmp_path_factory, toy_city_root, toy_city_spec, qwen_dir, sam2_dir):
    from mmengine.registry import init_default_scope

    from mmcora.models.mllm import ensure_tiny_llava
    init_default_scope('mmseg')
    tmp = tmp_path_factory.mktemp('contract')
    return dict(
        tmp=tmp,
        toy_city_root=toy_city_root,
        toy_city_spec=toy_city_spec,
        llava=ensure_tiny_llava(str(tmp / 'tiny-llava')),
        qwen=qwen_dir,
        sam2=sam2_dir)


@pytest.mark.parametrize('name', sorted(ROWS))
def test_component_builds_from_config_and_keeps_its_contract(name, ctx):
    registry_name, make_cfg, check = ROWS[name]
    cfg = make_cfg(ctx)
    assert cfg['type'] == name
    built = registry_of(registry_name).build(cfg)
    assert type(built).__name__ == name
    check(built, ctx)
    np.random.seed(0)  # builds may draw from numpy's global RNG; keep rows independent
