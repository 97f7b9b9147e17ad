# Semi-supervised toy city: labeled and unlabeled images of a partition in every batch
# (MultiSourceSampler), unlabeled ones as a weak view plus two pixel-aligned strong views.
_base_ = ['./toy_city.py']
crop_size = (128, 128)
geometric = [
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
]
labeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    *geometric,
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSemiSegInputs', branch='sup'),
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadEmptyAnnotations'),
    *geometric,
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='StrongViews', num_views=2),
    dict(type='PackSemiSegInputs', branch='unsup'),
]
labeled = dict(
    type='ToyCityscapesDataset',
    data_root='data/toy_city',
    toy_city=dict(num_train=240, num_val=40, height=128, width=256, seed=0),
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    ann_file='splits/1_30/labeled.txt',
    pipeline=labeled_pipeline)
unlabeled = dict(labeled, ann_file='splits/1_30/unlabeled.txt', pipeline=unlabeled_pipeline)
train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=8, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[labeled, unlabeled]))
# Fail before the first iteration if a listed image or label map is missing.
custom_hooks = [dict(type='DataFilesCheckHook')]
