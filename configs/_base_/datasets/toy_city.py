# Toy city: synthetic street scenes in the Cityscapes layout, generated at data_root on first
# use (ToyCityscapesDataset), read exactly as mmseg reads Cityscapes.
dataset_type = 'ToyCityscapesDataset'
data_root = 'data/toy_city'
toy_city = dict(num_train=240, num_val=40, height=128, width=256, seed=0)
partition = '1_30'
crop_size = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        toy_city=toy_city,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        ann_file=f'splits/{partition}/labeled.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        toy_city=toy_city,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        ann_file='splits/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
