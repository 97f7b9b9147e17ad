# Robustness probe (not a paper setting): full CORA with 30 % of the drawn pseudo-masks
# replaced by another present class's mask under the same query (CorruptPseudoMask), as a
# teacher that confuses classes would give; `_noise-30_unweighted` is the same without the
# consistency weights.
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
pseudo_labeled = dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadPseudoLabel'),
    dict(
        type='SamplePseudoQueries',
        num_queries={{_base_.num_consistency_queries}},
        min_area_ratio=0.001),
    dict(type='CorruptPseudoMask', ratio=0.3),
    dict(type='SAMResize', size=256),
    dict(type='CLIPInputs', size=56, backend='cv2'),  # as the toy LLaVA was pretrained
    dict(type='PackReasoningInputs'),
])
