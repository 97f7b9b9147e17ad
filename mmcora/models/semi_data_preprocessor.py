"""Data preprocessor for mixed labeled/unlabeled batches (UniMatch)."""
from typing import Dict

import torch
from mmseg.models import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class SemiSegDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` that splits a training batch by branch.

    Samples packed by ``PackSemiSegInputs`` carry ``branch`` in their metainfo. Labeled
    samples are normalised and padded as usual; each view of the unlabeled samples (weak,
    strong 1, strong 2, ...) is normalised and padded the same way, and their all-zero maps
    become ignore maps (255 on the padding). Evaluation batches go through unchanged.

    Returns in training:
        ``inputs``: ``{'sup': (Bl, 3, H, W), 'unsup': (V, Bu, 3, H, W)}``;
        ``data_samples``: ``{'sup': [...], 'unsup': [...]}``.
    """

    def forward(self, data: dict, training: bool = False) -> Dict:
        if not training:
            return super().forward(data, training)
        groups = {'sup': ([], []), 'unsup': ([], [])}
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            branch = sample.metainfo.get('branch', 'sup')
            groups[branch][0].append(inputs)
            groups[branch][1].append(sample)
        if not groups['sup'][0] or not groups['unsup'][0]:
            raise ValueError('a semi-supervised training batch needs labeled and unlabeled '
                             'samples (use MultiSourceSampler over [labeled, unlabeled])')
        sup = super().forward(dict(inputs=groups['sup'][0], data_samples=groups['sup'][1]), True)
        views, samples = groups['unsup']
        stacked = []
        for view in range(views[0].shape[0]):
            # padding the maps again is a no-op after the first view: same size
            out = super().forward(dict(inputs=[v[view] for v in views], data_samples=samples), True)
            stacked.append(out['inputs'])
        return dict(
            inputs=dict(sup=sup['inputs'], unsup=torch.stack(stacked)),
            data_samples=dict(sup=sup['data_samples'], unsup=out['data_samples']))
