# Data of CORA's stages 2 and 3 on the toy city 1/30 (stage 1 is the reasoning config's
# train_dataloader restricted to semantic + attribute instructions): conditional instructions,
# then labeled + pseudo-labeled images in every batch. The pseudo-labels are the teacher's,
# exported to data/toy_city/pseudo/<teacher>_1_30 by tools/export_pseudo_labels.py. Names
# differ from toy_city_reasoning.py's so that a config can inherit both.
semi_root = 'data/toy_city'
semi_partition = '1_30'
teacher = 'unimatch'  # whose pseudo-labels: the directory pseudo/<teacher>_<partition>
num_consistency_queries = 7  # K: 1 trained + K-1 rephrasings for the consistency weights
labeled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=3),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56),
    dict(type='PackReasoningInputs'),
]
labeled_reasoning = dict(
    type='ReasoningSegDataset',
    data_root=semi_root,
    ann_file=f'instructions/{semi_partition}_labeled.jsonl',
    build_instructions=dict(dataset='cityscapes', split='train',
                            ann_file=f'splits/{semi_partition}/labeled.txt', seed=0),
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    pipeline=labeled_pipeline)
pseudo_labeled = dict(
    type='SemiReasoningDataset',
    data_root=semi_root,
    ann_file=f'splits/{semi_partition}/unlabeled.txt',
    pseudo_dir=f'pseudo/{teacher}_{semi_partition}',
    dataset='cityscapes',
    num_queries=num_consistency_queries,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPseudoLabel'),
        dict(type='SamplePseudoQueries', num_queries=num_consistency_queries,
             min_area_ratio=0.001),
        dict(type='SAMResize', size=256),
        dict(type='CLIPInputs', size=56),
        dict(type='PackReasoningInputs'),
    ])
conditional_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(labeled_reasoning, query_types=('conditional', )))
unlabeled_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=4, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=[labeled_reasoning, pseudo_labeled]))
# every labeled instruction type, no unlabeled image (ablations and the full-label ceiling)
labeled_dataloader = dict(conditional_dataloader, dataset=labeled_reasoning)
