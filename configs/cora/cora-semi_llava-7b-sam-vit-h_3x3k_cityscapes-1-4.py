# CORA on the Cityscapes 1/4 partition; everything else as the 1/30 config.
_base_ = ['./cora-semi_llava-7b-sam-vit-h_3x3k_cityscapes-1-30.py']
labeled_reasoning = dict(
    ann_file='instructions/1_4_labeled.jsonl',
    build_instructions=dict(ann_file='splits/1_4/labeled.txt'))
pseudo_labeled = dict(ann_file='splits/1_4/unlabeled.txt', pseudo_dir='pseudo/unimatch_1_4')
