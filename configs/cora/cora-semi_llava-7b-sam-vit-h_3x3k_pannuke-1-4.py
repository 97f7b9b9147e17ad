# CORA on PanNuke fold 1, 1/4 partition; everything else as the 1/30 config.
_base_ = ['./cora-semi_llava-7b-sam-vit-h_3x3k_pannuke-1-30.py']
labeled_reasoning = dict(
    ann_file='instructions/fold1_1_4_labeled.jsonl',
    build_instructions=dict(ann_file='splits/fold1/1_4/labeled.txt'))
pseudo_labeled = dict(
    ann_file='splits/fold1/1_4/unlabeled.txt', pseudo_dir='pseudo/fold1/unimatch_1_4')
