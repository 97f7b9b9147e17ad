# Reasoning segmentation on the toy city, laid out like Cityscapes: labeled 1/30 images with
# their instruction set and the fixed val instructions, both built offline on first use,
# after the toy city itself is generated. Sizes match the tiny model (SAM 256, CLIP 56).
_base_ = ['./cityscapes_reasoning.py']
data_root = 'data/toy_city'
toy_city = dict(num_train=240, num_val=40, height=128, width=256, seed=0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SampleQueries', num_queries=3),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56, backend='cv2'),  # as the toy LLaVA was pretrained
    dict(type='PackReasoningInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasoningAnnotations'),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56, backend='cv2'),  # as the toy LLaVA was pretrained
    dict(type='PackReasoningInputs'),
]
train_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, toy_city=toy_city, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, toy_city=toy_city, pipeline=test_pipeline))
test_dataloader = val_dataloader
