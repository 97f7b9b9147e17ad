"""CORA with unlabeled images (stage 3): consistency-weighted pseudo-masks and token alignment.

Shaped like mmdet 3.x's ``SemiBaseDetector``: the labeled part is the parent's loss
(``loss_by_gt``), the unlabeled part has its own named steps and weights. Labeled and
pseudo-labeled samples arrive mixed in one batch (``MultiSourceSampler``); a sample is
pseudo-labeled when its metainfo has ``pseudo_path`` (``SemiReasoningDataset``).
"""
from typing import Dict, List, Optional, Tuple

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType

from ...structures import ReasoningDataSample
from .cora import CORASegmentor
from .snapshot import ParameterSnapshot
from .token_bank import TokenBank  # noqa: F401  registers TokenBank

SampleList = List[ReasoningDataSample]


@MODELS.register_module()
class SemiCORASegmentor(CORASegmentor):
    """CORA trained on labeled instructions and pseudo-labeled images (Eq. 9).

    Call graph::

        loss(inputs, data_samples)
          extract_feat ------------------> every image encoded once (SAM, CLIP)
          loss_by_gt(labeled) -----------> L^l = alpha CE + BCE + Dice; [SEG] prompts -> bank
          loss_by_pseudo(unlabeled)
            trained query: mllm.forward_full -> projector -> decode_masks -> logits (with grad)
            pseudo_weights
              consistency_probs ---------> K-1 rephrasings through the frozen snapshot,
                                           one no-grad batch on the same encodings
              loss_pseudo.pixel_weights -> lambda (Eq. 6, the mapping of the config)
            loss_pseudo -----------------> sigma * L^u_seg (Eq. 7)
            loss_token ------------------> sigma * L^u_t (Eq. 8) against token_bank

    Args:
        loss_pseudo (ConfigType): ``VarianceWeightedLoss`` config; its ``mapping`` chooses OCPL
            (``'stability'``), Eq. 6 literally (``'variance'``), the confidence-threshold
            baseline (``'confidence'``) or plain pseudo-labels (``'none'``).
        loss_token (OptConfigType): ``TokenContrastiveLoss`` config, or None for no token alignment
            (TFCA off).
        token_bank (OptConfigType): ``TokenBank`` config (``dim`` is SAM's prompt size); needed with
            ``loss_token``.
        unlabeled_weight (float): σ of Eq. 9, on both unlabeled losses. Our losses are means (see
            ``VarianceWeightedLoss`` for the σ that matches the paper's sum).
        **kwargs (dict): ``CORASegmentor`` arguments.
    """

    def __init__(self,
                 *args,
                 loss_pseudo: ConfigType = dict(type='VarianceWeightedLoss'),
                 loss_token: OptConfigType = dict(type='TokenContrastiveLoss'),
                 token_bank: OptConfigType = dict(type='TokenBank', num_classes=19),
                 unlabeled_weight: float = 1.0,
                 **kwargs) -> None:
        # the losses before the parent's models: a misspelt key fails before LLaVA loads
        pseudo = MODELS.build(loss_pseudo)
        token = None if loss_token is None else MODELS.build(loss_token)
        if token is not None and token_bank is None:
            raise ValueError('model.loss_token needs a model.token_bank (or loss_token=None)')
        super().__init__(*args, **kwargs)
        self.loss_pseudo, self.loss_token = pseudo, token
        self.token_bank = None if self.loss_token is None else MODELS.build(
            dict(dict(dim=self.sam.prompt_dim), **token_bank))
        self.unlabeled_weight = unlabeled_weight
        self.consistency_snapshot = None
        if self.loss_pseudo.needs_rephrasings:
            self.consistency_snapshot = ParameterSnapshot(self, exclude=self._unused_by_passes())
        self._bank_update: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def _unused_by_passes(self) -> List[str]:
        """Parameters the teacher-forced consistency passes never read: an untied LM head."""
        head = self.mllm.model.get_output_embeddings()
        if head.weight is self.mllm.model.get_input_embeddings().weight:
            return []
        return [n for n, p in self.named_parameters() if p is head.weight]

    # ------------------------------------------------------------------ stages
    def enter_stage(self, name: str) -> None:
        """Called by ``CORAStagedTrainLoop`` when a stage starts (also on resume).

        Entering ``'unlabeled'`` takes the consistency snapshot, once: a resumed run finds it
        taken in the checkpoint and keeps it.
        """
        snapshot = self.consistency_snapshot
        if name == 'unlabeled' and snapshot is not None and not bool(snapshot.taken):
            snapshot.take(self)

    def pop_bank_update(self) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The labeled tokens (N, P) and classes (N,) of the last loss, once (the hook's)."""
        update, self._bank_update = self._bank_update, None
        return update

    # ------------------------------------------------------------------ losses
    def loss(self, inputs: Dict[str, torch.Tensor], data_samples: SampleList) -> dict:
        """Eq. 9: labeled losses plus σ times the unlabeled ones."""
        sam_embeddings, image_features = self.extract_feat(inputs)
        labeled = [i for i, s in enumerate(data_samples) if not s.is_pseudo]
        unlabeled = [i for i, s in enumerate(data_samples) if s.is_pseudo]
        losses = {}
        if labeled or not unlabeled:
            samples = [data_samples[i] for i in labeled]
            losses, prompts = self.loss_by_gt(sam_embeddings[labeled], image_features[labeled],
                                              samples)
            self._remember_labeled_tokens(prompts, samples)
        if unlabeled:
            losses.update(
                self.loss_by_pseudo(sam_embeddings[unlabeled], image_features[unlabeled],
                                    [data_samples[i] for i in unlabeled]))
        return losses

    def _remember_labeled_tokens(self, prompts: torch.Tensor, samples: SampleList) -> None:
        if self.token_bank is None:
            return
        classes = torch.tensor([q['class_id'] for s in samples for q in s.queries],
                               dtype=torch.long,
                               device=prompts.device)
        keep = classes >= 0
        self._bank_update = (prompts.detach()[keep], classes[keep])

    def loss_by_pseudo(self, sam_embeddings: torch.Tensor, image_features: torch.Tensor,
                       data_samples: SampleList) -> dict:
        """σ-weighted pseudo-mask and token losses of pseudo-labeled samples (one query each)."""
        texts, answers, index, names = self.gather_queries(data_samples)
        tokens = self.mllm.tokenize(texts, answers, index.device, names)
        _, states, found = self.mllm.forward_full(image_features, index, tokens, None)
        if not bool(found.all()):
            raise ValueError(f'answers without [SEG]: {names[:3]}')
        prompts = self.projector(states.float())
        logits = self.decode_masks(sam_embeddings, prompts, index, data_samples)
        weights = self.pseudo_weights(sam_embeddings, image_features, data_samples)
        values = [
            self.loss_pseudo(lg, s.gt_masks.to(lg.device), w)
            for lg, s, w in zip(logits, data_samples, weights)
        ]
        sigma = self.unlabeled_weight
        losses = {
            self.loss_pseudo.loss_name: sigma * sum(values) / len(values),
            'pseudo_weight': torch.stack([w.float().mean() for w in weights]).mean()
        }
        if self.loss_token is not None:
            bank_tokens, bank_classes = self.token_bank.contents()
            classes = torch.tensor([q['class_id'] for s in data_samples for q in s.queries],
                                   dtype=torch.long,
                                   device=prompts.device)
            losses[self.loss_token.loss_name] = sigma * self.loss_token(
                prompts, classes, bank_tokens, bank_classes)
        return losses

    def pseudo_weights(self, sam_embeddings: torch.Tensor, image_features: torch.Tensor,
                       data_samples: SampleList) -> List[torch.Tensor]:
        """λ per pseudo-mask pixel, one (1, H, W) tensor per sample."""
        probs = (
            self.consistency_probs(sam_embeddings, image_features, data_samples)
            if self.loss_pseudo.needs_rephrasings else [None] * len(data_samples))
        weights = []
        for sample, p in zip(data_samples, probs):
            confidence = sample.get('gt_confidence')
            weights.append(
                self.loss_pseudo.pixel_weights(
                    sample.gt_masks, None if p is None else p.unsqueeze(0),
                    None if confidence is None else confidence.to(sample.gt_masks.device)))
        return weights

    def consistency_probs(self, sam_embeddings: torch.Tensor, image_features: torch.Tensor,
                          data_samples: SampleList) -> List[torch.Tensor]:
        """Mask probabilities (K-1, H, W) per sample from its K-1 rephrasings.

        All rephrasings of the batch run as one no-grad batch through the frozen snapshot,
        against the images' shared encodings (each image's prefix computed once).
        """
        texts, answers, rows, names = [], [], [], []
        for b, sample in enumerate(data_samples):
            for i, query in enumerate(sample.consistency_queries):
                texts.append(query['text'])
                answers.append(query['answer'])
                rows.append(b)
                names.append(f'{sample.img_path} rephrasing {i}')
        device = sam_embeddings.device
        index = torch.tensor(rows, dtype=torch.long, device=device)
        with self.consistency_snapshot.swapped_in(self):
            tokens = self.mllm.tokenize(texts, answers, device, names)
            tokens.labels = None  # only [SEG] states are read: no LM head, no CE
            _, states, _, *_ = self.mllm.forward_cached(image_features, index, tokens, None)
            logits = self.decode_masks(sam_embeddings, self.projector(states.float()), index,
                                       data_samples)
        return [lg.float().sigmoid() for lg in logits]
