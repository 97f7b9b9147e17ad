# Seg-Zero's semi-supervised bridge on the toy city 1/30: the toy config's warm start on the
# 8 labeled images, then GRPO on prompts that are half the labeled images' instructions and
# half the unlabeled images' pseudo-labeled classes (targets: box and points of the teacher's
# pseudo-mask; each such group's advantages scaled by the teacher's mean confidence over it,
# `reliability` in the log). Everything else is the toy config's. Needs the teacher's
# pseudo-labels (configs/segzero/README.md, "The semi-supervised bridge"):
#   python tools/train.py configs/toy/fcn_r18-tiny_toy-city-1-30.py --work-dir work_dirs/fcn_toy
#   python tools/export_pseudo_labels.py configs/toy/fcn_r18-tiny_toy-city-1-30.py \
#       work_dirs/fcn_toy/iter_2000.pth --ann-file splits/1_30/unlabeled.txt \
#       --data-root data/toy_city --out data/toy_city/pseudo/fcn_1_30
#   python tools/train.py configs/segzero/segzero_tiny_sft-600-grpo-100_toy-city-1-30_semi.py
_base_ = ['./segzero_tiny_sft-600-grpo-100_toy-city-1-30.py']
# the toy config's labeled instruction data as a named entry: the warm start and GRPO's
# labeled half both read it, so a partition config changes it once
labeled_segzero = {{_base_.train_dataloader.dataset}}
train_dataloader = dict(dataset=dict(_delete_=True, ref='labeled_segzero'))
pseudo_labeled = dict(
    type='SemiReasoningDataset',
    data_root={{_base_.train_dataloader.dataset.data_root}},
    ann_file='splits/1_30/unlabeled.txt',  # the 232 images whose labels training never sees
    pseudo_dir='pseudo/fcn_1_30',  # the teacher's export (tools/export_pseudo_labels.py)
    dataset='cityscapes',
    num_queries=1,  # GRPO needs no rephrasings: the group's G replies are its own samples
    toy_city={{_base_.train_dataloader.dataset.toy_city}},  # the same city, never a second spec
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPseudoLabel'),
        dict(type='SamplePseudoQueries', num_queries=1, min_area_ratio=0.01),
        dict(type='SegZeroInputs', canvas=840),
        dict(type='PackSegZeroInputs'),
    ])
# 4 prompts per step as in the toy config: one labeled image (its 2 queries) and two
# pseudo-labeled images (one query each)
grpo_dataloader = dict(
    batch_size=3,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=3, source_ratio=[1, 2]),
    dataset=dict(type='ConcatDataset', datasets=['labeled_segzero', 'pseudo_labeled']))
train_cfg = dict(stages=[
    dict(name='sft', iters={{_base_.sft_iters}}),
    dict(name='grpo', iters={{_base_.grpo_iters}}, dataloader='grpo_dataloader'),
])
# a missing or mismatched pseudo-label fails before the warm start, not at GRPO's first step
custom_hooks = [dict(type='DataFilesCheckHook')]
