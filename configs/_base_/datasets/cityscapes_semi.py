# Semi-supervised Cityscapes (UniMatch recipe): per GPU 2 labeled + 2 unlabeled images of a
# UniMatch partition, random resize 0.5-2.0, crop 801, flip; unlabeled images as a weak view
# plus two strong views. Val: the 500 val images at full resolution (sliding window in the
# model's test_cfg). Partition lists: python tools/dataset_converters/cityscapes_splits.py
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
partition = '1_30'
crop_size = (801, 801)
geometric = [
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
]
labeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    *geometric,
    dict(type='PackSemiSegInputs', branch='sup'),
]
unlabeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadEmptyAnnotations'),
    *geometric,
    dict(type='StrongViews', num_views=2),
    dict(type='PackSemiSegInputs', branch='unsup'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
labeled = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    ann_file=f'splits/{partition}/labeled.txt',
    pipeline=labeled_pipeline)
unlabeled = dict(labeled, ann_file=f'splits/{partition}/unlabeled.txt', pipeline=unlabeled_pipeline)
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=4, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[labeled, unlabeled]))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        ann_file='splits/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
# Fail before the first iteration if a listed image or label map is missing.
custom_hooks = [dict(type='DataFilesCheckHook')]
