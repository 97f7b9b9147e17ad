# Seg-Zero on the Cityscapes instruction data (the labeled images of a UniMatch partition,
# CORA's instruction sets): one query per image and step (a prompt is one image + one
# instruction, as Seg-Zero's), the reasoner's 840 px canvas, targets from the masks.
_base_ = ['./cityscapes_reasoning.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=1),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SegZeroInputs', canvas=840),
    dict(type='PackSegZeroInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SegZeroInputs', canvas=840),
    dict(type='PackSegZeroInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SegZeroMetric', prefix='segzero')
test_evaluator = val_evaluator
