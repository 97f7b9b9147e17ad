# Evaluation on LISA's ReasonSeg (val: 200 images, test: 779; the two test files without a
# target polygon are skipped with a warning), with LISA's fixed prompt on text[0] and cIoU /
# gIoU. Data layout and usage: docs/reasonseg.md.
# Evaluation only: it brings its own val/test loops, so combine it with the runtime and a
# CORA model config, not with a training schedule (mmengine forbids keys twice among bases).
# The sizes are the 7B model's (SAM 1024, CLIP ViT-L/14-336).
custom_imports = dict(imports=['mmcora'], allow_failed_imports=False)
dataset_type = 'ReasonSegDataset'
data_root = 'data/reasonseg'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=1024),
    dict(type='CLIPInputs', size=336),
    dict(type='PackReasoningInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        all_texts=False,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='ReasoningIoUMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(visualization=dict(type='ReasoningVisualizationHook'))
