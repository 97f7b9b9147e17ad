# Ablation: confidence-thresholded pseudo-labels plus token-level feature consistency
# alignment (TFCA), without output-consistency weights (OCPL off).
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30.py']
model = dict(loss_pseudo=dict(mapping='confidence', conf_thresh=0.95))
