# CORA on the Cityscapes 1/4 partition; everything else as cityscapes_1-30.py.
_base_ = ['./cityscapes_1-30.py']
train_dataloader = dict(
    dataset=dict(
        ann_file='instructions/1_4_labeled.jsonl',
        build_instructions=dict(ann_file='splits/1_4/labeled.txt')))
