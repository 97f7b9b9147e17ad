# Reasoning segmentation on the toy city: labeled 1/30 images with their instruction set
# (built offline on first use), evaluated on the fixed val instruction set (seed 0).
dataset_type = 'ReasoningSegDataset'
data_root = 'data/toy_city'
toy_city = dict(num_train=240, num_val=40, height=128, width=256, seed=0)
partition = '1_30'
sam_size = 256
clip_size = 56
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=3),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=sam_size),
    dict(type='CLIPInputs', size=clip_size),
    dict(type='PackReasoningInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=sam_size),
    dict(type='CLIPInputs', size=clip_size),
    dict(type='PackReasoningInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        toy_city=toy_city,
        ann_file=f'instructions/{partition}_labeled.jsonl',
        build_instructions=dict(
            dataset='cityscapes', split='train', ann_file=f'splits/{partition}/labeled.txt',
            seed=0),
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
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
        ann_file='instructions/val.jsonl',
        build_instructions=dict(
            dataset='cityscapes', split='val', ann_file='splits/val.txt', seed=0),
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasoningIoUMetric')
test_evaluator = val_evaluator
