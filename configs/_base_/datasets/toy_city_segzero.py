# Seg-Zero on the toy city's instruction data (1/30: the 8 labeled images), the same canvas
# and 1024 px segmenter input as the real configs.
_base_ = ['./toy_city_reasoning.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=2),
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
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SegZeroMetric', prefix='segzero')
test_evaluator = val_evaluator
