# The data of CORA's three stages at the paper's size (batch 2 per GPU), as named entries that
# CORAStagedTrainLoop resolves ('name', or dict(ref='name', **overrides)). The dataset config
# that inherits this defines labeled_reasoning (the labeled images' instruction set) and
# pseudo_labeled (SemiReasoningDataset: unlabeled images with the teacher's pseudo-labels);
# a partition or teacher config overrides those two once for every stage.
semantic_dataloader = dict(  # stage 1: semantic + attribute instructions
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(ref='labeled_reasoning', query_types=('semantic', 'attribute')))
conditional_dataloader = dict(  # stage 2: conditional instructions (anchor encoders)
    semantic_dataloader,
    dataset=dict(ref='labeled_reasoning', query_types=('conditional', )))
# every labeled instruction type, no unlabeled image (ablations and the full-label ceiling)
labeled_dataloader = dict(semantic_dataloader, dataset='labeled_reasoning')
unlabeled_dataloader = dict(  # stage 3: 1 labeled + 1 pseudo-labeled image per GPU
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=2, source_ratio=[1, 1]),
    dataset=dict(type='ConcatDataset', datasets=['labeled_reasoning', 'pseudo_labeled']))
