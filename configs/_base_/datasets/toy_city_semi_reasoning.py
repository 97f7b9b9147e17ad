# Data of CORA's three stages on the toy city 1/30, as named entries that the stages reference
# (CORAStagedTrainLoop resolves 'name' and dict(ref='name', **overrides)): a partition or
# teacher config overrides labeled_reasoning / pseudo_labeled once for every stage. Stage 1
# takes the semantic + attribute instructions, stage 2 the conditional ones, stage 3 the
# labeled images and the pseudo-labeled ones in every batch. The pseudo-labels are the
# teacher's, exported to data/toy_city/pseudo/<teacher>_1_30 by tools/export_pseudo_labels.py.
num_consistency_queries = 7  # K: 1 trained + K-1 rephrasings for the consistency weights
labeled_reasoning = dict(
    type='ReasoningSegDataset',
    data_root='data/toy_city',
    ann_file='instructions/1_30_labeled.jsonl',
    build_instructions=dict(
        dataset='cityscapes', split='train', ann_file='splits/1_30/labeled.txt', seed=0),
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    toy_city=dict(num_train=240, num_val=40, height=128, width=256, seed=0),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='SampleQueries', num_queries=3, reword=True),  # wording drawn per draw
        dict(type='LoadReasoningAnnotations'),
        dict(type='SAMResize', size=256),
        dict(type='CLIPInputs', size=56, backend='cv2'),  # as the toy LLaVA was pretrained
        dict(type='PackReasoningInputs'),
    ])
pseudo_labeled = dict(
    type='SemiReasoningDataset',
    data_root='data/toy_city',
    ann_file='splits/1_30/unlabeled.txt',
    pseudo_dir='pseudo/unimatch_1_30',  # the teacher: UniMatch trained on the same partition
    dataset='cityscapes',
    num_queries=num_consistency_queries,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPseudoLabel'),
        dict(type='SamplePseudoQueries', num_queries=num_consistency_queries, min_area_ratio=0.001),
        dict(type='SAMResize', size=256),
        dict(type='CLIPInputs', size=56, backend='cv2'),  # as the toy LLaVA was pretrained
        dict(type='PackReasoningInputs'),
    ])
semantic_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(ref='labeled_reasoning', query_types=('semantic', 'attribute')))
conditional_dataloader = dict(
    semantic_dataloader, dataset=dict(ref='labeled_reasoning', query_types=('conditional', )))
# every labeled instruction type, no unlabeled image (ablations and the full-label ceiling)
labeled_dataloader = dict(semantic_dataloader, dataset='labeled_reasoning')
unlabeled_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=4, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=['labeled_reasoning', 'pseudo_labeled']))
