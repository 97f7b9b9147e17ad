# Reasoning segmentation on PanNuke (docs/pannuke.md): the labeled images of a partition of the
# training fold with their instruction set; val on the next fold, test on the remaining one
# (mmcora's default rotation: train fold 1, val fold 2, test fold 3). The 256-px patches are
# resized to SAM's 1024 and CLIP's 336 as any image. Prepare with
#   python tools/dataset_converters/pannuke.py /path/to/PanNuke data/pannuke
# (the instruction files are built offline on first use, or with tools/build_instructions.py
# data/pannuke --dataset pannuke --ann-file splits/fold1/1_30/labeled.txt). Instructions name
# the classes by display names ("the dead cells"; mmcora.instructions.vocabulary).
dataset_type = 'ReasoningSegDataset'
data_root = 'data/pannuke'
train_fold = 'fold1'
val_fold = 'fold2'
test_fold = 'fold3'
partition = '1_30'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=3, vocabulary='pannuke'),
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
pannuke_files = dict(
    img_suffix='.png',
    seg_map_suffix='.png',
    data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'))
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'instructions/{train_fold}_{partition}_labeled.jsonl',
        build_instructions=dict(
            dataset='pannuke',
            split='train',
            ann_file=f'splits/{train_fold}/{partition}/labeled.txt',
            seed=0),
        pipeline=train_pipeline,
        **pannuke_files))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=f'instructions/{val_fold}_all.jsonl',
        build_instructions=dict(
            dataset='pannuke', split='val', ann_file=f'splits/{val_fold}/all.txt', seed=0),
        test_mode=True,
        pipeline=test_pipeline,
        **pannuke_files))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        ann_file=f'instructions/{test_fold}_all.jsonl',
        build_instructions=dict(
            dataset='pannuke', split='test', ann_file=f'splits/{test_fold}/all.txt', seed=0)))
val_evaluator = dict(type='ReasoningIoUMetric')
test_evaluator = val_evaluator
# Fail before the first iteration if a listed image or label map is missing.
custom_hooks = [dict(type='DataFilesCheckHook')]
