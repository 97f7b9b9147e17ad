# Data of CORA's three stages on Cityscapes at the paper's size (SAM 1024, CLIP 336): the two
# entries the stage dataloaders of cora_stages.py reference; a partition or teacher config
# overrides labeled_reasoning / pseudo_labeled once. Stage 1: semantic + attribute
# instructions of the labeled images; stage 2: their conditional instructions; stage 3:
# labeled + pseudo-labeled images in every batch (1 + 1 per GPU). Prepare the pseudo-labels
# with the teacher trained on the same partition (configs/unimatch), e.g.
#   python tools/export_pseudo_labels.py \
#       configs/unimatch/unimatch_deeplabv3plus-r101_cityscapes-1-30.py TEACHER.pth \
#       --ann-file splits/1_30/unlabeled.txt --out data/cityscapes/pseudo/unimatch_1_30
# The teacher is a documented field: pseudo_dir='pseudo/semivl_1_30' for SemiVL's maps.
_base_ = ['./cora_stages.py']
num_consistency_queries = 7  # K (paper: 7)
labeled_reasoning = dict(
    type='ReasoningSegDataset',
    data_root='data/cityscapes',
    ann_file='instructions/1_30_labeled.jsonl',
    build_instructions=dict(
        dataset='cityscapes', split='train', ann_file='splits/1_30/labeled.txt', seed=0),
    data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='SampleQueries', num_queries=3, reword=True),  # wording drawn per draw
        dict(type='LoadReasoningAnnotations'),
        dict(type='SAMResize', size=1024),
        dict(type='CLIPInputs', size=336),
        dict(type='PackReasoningInputs'),
    ])
pseudo_labeled = dict(
    type='SemiReasoningDataset',
    data_root='data/cityscapes',
    ann_file='splits/1_30/unlabeled.txt',
    pseudo_dir='pseudo/unimatch_1_30',  # <teacher>_<partition>: unimatch or semivl
    dataset='cityscapes',
    num_queries=num_consistency_queries,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPseudoLabel'),
        dict(type='SamplePseudoQueries', num_queries=num_consistency_queries, min_area_ratio=0.001),
        dict(type='SAMResize', size=1024),
        dict(type='CLIPInputs', size=336),
        dict(type='PackReasoningInputs'),
    ])
