# The tiny CORA of toy-city_1-30_tiny.py trained on all 240 training images with labels: the
# full-label ceiling of the 1/30 configs (same model, schedule and instruction engine).
_base_ = ['./toy-city_1-30_tiny.py']
train_dataloader = dict(
    dataset=dict(
        ann_file='instructions/train.jsonl', build_instructions=dict(ann_file='splits/train.txt')))
