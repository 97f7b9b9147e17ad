# Robustness probe: `_noise-30` (30 % wrong-class pseudo-masks) with every pseudo-labeled
# pixel weighted 1 (no output-consistency weights); token alignment as in full CORA.
_base_ = ['./cora-semi_tiny_3x600_toy-city-1-30_noise-30.py']
model = dict(loss_pseudo=dict(mapping='none'))
