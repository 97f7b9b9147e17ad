# SemiCORASegmentor at the paper's size: the CORA model (LLaVA-1.5-7B + SAM ViT-H) plus the
# stage-3 parts: consistency-weighted pseudo-mask loss (OCPL) and token alignment (TFCA)
# against a per-class bank of labeled [SEG] tokens. A dataset's config sets
# token_bank.num_classes to its number of label ids.
_base_ = ['./cora_llava-7b_sam-vit-h.py']
model = dict(
    type='SemiCORASegmentor',
    loss_pseudo=dict(type='VarianceWeightedLoss', mapping='stability'),
    loss_token=dict(type='TokenContrastiveLoss', temperature=0.07),
    token_bank=dict(type='TokenBank', num_classes=19, size_per_class=32),
    # sigma of Eq. 9 on our mean-reduced losses (VarianceWeightedLoss's docstring gives the
    # paper's 0.001 under Eq. 7's sum; the toy's measured choice is used here)
    unlabeled_weight=1.0)
