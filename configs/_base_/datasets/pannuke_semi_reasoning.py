# Data of CORA's three stages on PanNuke at the paper's size (SAM 1024, CLIP 336): the two
# entries the stage dataloaders of cora_stages.py reference; a partition or teacher config
# overrides labeled_reasoning / pseudo_labeled once. Training fold 1 (docs/pannuke.md). The
# pseudo-labels are a semi-supervised teacher's trained on the same partition (UniMatch or
# SemiVL), exported for the partition's unlabeled list:
#   python tools/export_pseudo_labels.py TEACHER_CONFIG TEACHER.pth \
#       --ann-file splits/fold1/1_30/unlabeled.txt --out data/pannuke/pseudo/fold1/unimatch_1_30
# The teacher is a documented field: pseudo_dir='pseudo/fold1/semivl_1_30' for SemiVL's maps.
_base_ = ['./cora_stages.py']
num_consistency_queries = 7  # K (paper: 7)
labeled_reasoning = dict(
    type='ReasoningSegDataset',
    data_root='data/pannuke',
    ann_file='instructions/fold1_1_30_labeled.jsonl',
    build_instructions=dict(
        dataset='pannuke', split='train', ann_file='splits/fold1/1_30/labeled.txt', seed=0),
    img_suffix='.png',
    seg_map_suffix='.png',
    data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
    pipeline=[
        dict(type='LoadImageFromFile'),
        # wording drawn per draw, classes named as cells ("the dead cells")
        dict(type='SampleQueries', num_queries=3, reword=True, vocabulary='pannuke'),
        dict(type='LoadReasoningAnnotations'),
        dict(type='SAMResize', size=1024),
        dict(type='CLIPInputs', size=336),
        dict(type='PackReasoningInputs'),
    ])
pseudo_labeled = dict(
    type='SemiReasoningDataset',
    data_root='data/pannuke',
    ann_file='splits/fold1/1_30/unlabeled.txt',
    pseudo_dir='pseudo/fold1/unimatch_1_30',  # pseudo/<fold>/<teacher>_<partition>
    dataset='pannuke',
    data_prefix=dict(img_path='img_dir'),
    num_queries=num_consistency_queries,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadPseudoLabel'),
        # Nuclei are small: a class counts as present from 0.1 % of the patch (65 px of 256 x
        # 256, about one nucleus).
        dict(type='SamplePseudoQueries', num_queries=num_consistency_queries, min_area_ratio=0.001),
        dict(type='SAMResize', size=1024),
        dict(type='CLIPInputs', size=336),
        dict(type='PackReasoningInputs'),
    ])
