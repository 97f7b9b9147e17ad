# The full-label ceiling of the 3-stage toy configs: the same stages and schedule with all
# 240 training images labeled, so stage 3 trains on every labeled instruction type instead
# of pseudo-labeled images (no teacher, no unlabeled data).
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30_labeled-only.py']
labeled_reasoning = dict(
    ann_file='instructions/train.jsonl', build_instructions=dict(ann_file='splits/train.txt'))
