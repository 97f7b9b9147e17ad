# Reasoning segmentation on Cityscapes: the labeled images of a UniMatch partition with their
# instruction set, evaluated on the fixed val instruction set (seed 0). Prepare with
#   python tools/dataset_converters/cityscapes_splits.py data/cityscapes
#   python tools/build_instructions.py data/cityscapes --ann-file splits/1_30/labeled.txt
#   python tools/build_instructions.py data/cityscapes --ann-file splits/val.txt --split val
# (GPT-4o words attribute and conditional instructions when OPENAI_API_KEY is set; without
# the files, the datasets build them offline with the built-in engine on first use.)
dataset_type = 'ReasoningSegDataset'
data_root = 'data/cityscapes'
partition = '1_30'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=3),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=1024),
    dict(type='CLIPInputs', size=336),
    dict(type='PackReasoningInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=1024),
    dict(type='CLIPInputs', size=336),
    dict(type='PackReasoningInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'instructions/{partition}_labeled.jsonl',
        build_instructions=dict(
            dataset='cityscapes', split='train', ann_file=f'splits/{partition}/labeled.txt',
            seed=0),
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='instructions/val.jsonl',
        build_instructions=dict(
            dataset='cityscapes', split='val', ann_file='splits/val.txt', seed=0),
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasoningIoUMetric')
test_evaluator = val_evaluator
# Fail before the first iteration if a listed image or label map is missing (also when a
# file disappears after the instruction file was read).
custom_hooks = [dict(type='DataFilesCheckHook')]
