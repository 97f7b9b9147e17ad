"""CORA reasoning segmentor: LLaVA emits [SEG]; its projected state prompts SAM's decoder.

Each image is encoded once per batch (SAM image embedding and CLIP image tokens), however
many queries it carries; queries are batched through the language model and grouped by image
in the mask decoder.
"""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModel
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig

from ...structures import ReasoningDataSample
from ...utils.special_tokens import DEFAULT_ANSWER, SEG_TOKEN
from .. import mllm as _mllm  # noqa: F401  registers SegTokenProjector, AnchorEncoder
from ..pretrained import check_model_paths

SampleList = List[ReasoningDataSample]


def _sized(head: dict, key: str, **sizes: int) -> dict:
    """A head's config with the sizes the built LLaVA and SAM give it.

    Args:
        head (dict): The head's config (``model.projector``, ``model.anchor_encoder``).
        key (str): Its config key, for the error.
        **sizes (int): The sizes the built parts need, e.g. ``in_dim`` = the LLM's hidden size.

    Raises:
        ValueError: The config gives a size other than the one the model needs (the forward
            would fail at the first iteration with a shape error).
    """
    for name, size in sizes.items():
        if name in head and head[name] != size:
            raise ValueError(f'model.{key}.{name} is {head[name]}, but the built model needs '
                             f'{size}: leave it out to take it from the model')
    return dict(sizes, **head)


@MODELS.register_module()
class CORASegmentor(BaseModel):
    """Image + free-form instructions -> one binary mask per instruction.

    Call graph (as mmseg's ``EncoderDecoder`` documents its own)::

        loss(inputs, data_samples)              # mode='loss'
          extract_feat ---------------------> SAM embeddings (B, P, h, w), CLIP tokens
          loss_by_gt
          gather_queries -------------------> texts, answers, image index (Q,)
          anchor_embeds --------------------> anchor_encoder(CLIP CLS of crops, boxes)
          mllm.tokenize, mllm.forward_full -> answer CE, [SEG] states (Q, D)
          projector, decode_masks ----------> sam.decode -> sam.postprocess
          loss_mask_bce, loss_mask_dice, ce_loss_weight * CE

        predict(inputs, data_samples)           # mode='predict'
          extract_feat -> predict_with_features
            mllm.forward_cached ('teacher_forcing') | mllm.generate ('generate')
            decode_masks -> pred_masks (N, H, W), pred_texts

        _forward(inputs, data_samples)          # mode='tensor'
          extract_feat -> mllm.forward_full -> decode_masks -> mask logits

    Args:
        mllm (ConfigType): Config of the language model wrapper (``LlavaMLLM``).
        sam (ConfigType): Config of the SAM wrapper (``SAMWrapper``).
        loss_mask_bce (ConfigType): Per-pixel BCE on mask logits (LISA weight 2.0).
        loss_mask_dice (ConfigType): Dice on mask probabilities (LISA weight 0.5).
        ce_loss_weight (float): Weight of the answer-token cross-entropy (CORA's α, 1.0).
        projector (ConfigType): Config of the head from the ``[SEG]`` hidden state to SAM's sparse
            prompt (``SegTokenProjector``); ``in_dim`` and ``out_dim`` are filled from the built
            language model and SAM unless given.
        anchor_encoder (OptConfigType): Config of the encoder of conditional instructions' anchors
            (mask and box) into their placeholder tokens (``AnchorEncoder``; ``clip_dim`` and
            ``hidden_size`` filled likewise), or None for no anchor encoding.
        test_cfg (OptConfigType): ``mode``: ``'teacher_forcing'`` (the prompt ends with ``answer``,
            LISA's evaluation; it must contain ``[SEG]``) or ``'generate'`` (greedy decoding with
            the KV cache, up to ``max_new_tokens``). Other keys are refused. CORA has no
            ``train_cfg`` (training is configured by its losses).
        data_preprocessor (OptConfigType): ``ReasoningDataPreProcessor`` config.
    """

    def __init__(self,
                 mllm: ConfigType,
                 sam: ConfigType,
                 loss_mask_bce: ConfigType = dict(type='MaskBCELoss', loss_weight=2.0),
                 loss_mask_dice: ConfigType = dict(type='MaskDiceLoss', loss_weight=0.5),
                 ce_loss_weight: float = 1.0,
                 projector: ConfigType = dict(type='SegTokenProjector'),
                 anchor_encoder: OptConfigType = dict(type='AnchorEncoder'),
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # Options, files and losses first: a misspelt key or a bad path fails before a 7B
        # LLaVA loads (the losses are assigned below, in their usual module order).
        self.test_cfg = self.check_test_cfg(test_cfg)
        check_model_paths(mllm, 'model.mllm')
        check_model_paths(sam, 'model.sam')
        bce, dice = MODELS.build(loss_mask_bce), MODELS.build(loss_mask_dice)
        self.mllm = MODELS.build(mllm)
        self.sam = MODELS.build(sam)
        # The preprocessor follows the models it feeds: SAM's input size, LLaVA's CLIP stats.
        if hasattr(self.data_preprocessor, 'set_clip_statistics'):
            if self.data_preprocessor.sam_size is None:
                self.data_preprocessor.sam_size = self.sam.img_size
            self.data_preprocessor.set_clip_statistics(self.mllm.image_mean, self.mllm.image_std)
        self.projector = MODELS.build(
            _sized(
                projector, 'projector', in_dim=self.mllm.hidden_size, out_dim=self.sam.prompt_dim))
        self.anchor_encoder = None if anchor_encoder is None else MODELS.build(
            _sized(
                anchor_encoder,
                'anchor_encoder',
                clip_dim=self.mllm.vision_hidden_size,
                hidden_size=self.mllm.hidden_size))
        self.loss_mask_bce = bce
        self.loss_mask_dice = dice
        self.ce_loss_weight = ce_loss_weight

    @staticmethod
    def check_test_cfg(test_cfg: OptConfigType) -> dict:
        """``test_cfg`` over its defaults, every key and value checked.

        Args:
            test_cfg (OptConfigType): The config's ``model.test_cfg``.

        Returns:
            dict: ``mode``, ``answer`` and ``max_new_tokens``.

        Raises:
            KeyError: An unknown (e.g. misspelt) key.
            ValueError: An unknown mode, an answer without ``[SEG]`` or a token budget < 1.
        """
        cfg = dict(mode='teacher_forcing', answer=DEFAULT_ANSWER, max_new_tokens=16)
        unknown = sorted(set(test_cfg or {}) - set(cfg))
        if unknown:
            raise KeyError(f'unknown model.test_cfg keys {unknown}; expected some of '
                           f'{sorted(cfg)}')
        cfg.update(test_cfg or {})
        if cfg['mode'] not in ('teacher_forcing', 'generate'):
            raise ValueError("model.test_cfg.mode must be 'teacher_forcing' or 'generate', got "
                             f"{cfg['mode']!r}")
        if not isinstance(cfg['answer'], str) or SEG_TOKEN not in cfg['answer']:
            # teacher forcing reads each mask at the answer's [SEG]: without one, every
            # prediction would be empty
            raise ValueError(f'model.test_cfg.answer must contain {SEG_TOKEN}, got '
                             f"{cfg['answer']!r}")
        tokens = cfg['max_new_tokens']
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise ValueError(f'model.test_cfg.max_new_tokens must be an integer >= 1, got '
                             f'{tokens!r}')
        return cfg

    # ------------------------------------------------------------------ shared steps
    def extract_feat(self, inputs: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode each image once: SAM embeddings (B, P, h, w), CLIP tokens (B, T, D)."""
        return self.sam.encode_images(inputs['sam']), self.mllm.image_features(inputs['clip'])

    def gather_queries(self, data_samples: SampleList, answer: Optional[str] = None):
        """Flatten the samples' queries.

        Returns:
            texts, answers (the samples' own, or ``answer`` for all), image index (Q,) and a
            name per query for error messages.
        """
        texts, answers, index, names = [], [], [], []
        for b, sample in enumerate(data_samples):
            for i, query in enumerate(sample.queries):
                texts.append(query['text'])
                answers.append(answer if answer is not None else query['answer'])
                index.append(b)
                names.append(f'{sample.metainfo.get("img_path", f"image {b}")} query {i}')
        device = next(self.projector.parameters()).device
        return texts, answers, torch.tensor(index, dtype=torch.long, device=device), names

    def anchor_embeds(self, data_samples: SampleList, num_queries: int) -> Optional[torch.Tensor]:
        """(Q, 2, D) anchor mask/box encodings (zeros for queries without anchor), or None."""
        if self.anchor_encoder is None:
            return None
        crops, rows, boxes, offset = [], [], [], 0
        for sample in data_samples:
            if 'anchor_crops' in sample and len(sample.anchor_index):
                crops.append(sample.anchor_crops)
                rows.append(sample.anchor_index.to(crops[-1].device) + offset)
                boxes.append(sample.anchor_boxes.to(crops[-1].device))
            offset += sample.num_queries
        if not crops:
            return None
        cls = self.mllm.clip_cls(torch.cat(crops)).float()
        encoded = self.anchor_encoder(cls, torch.cat(boxes).float())
        embeds = encoded.new_zeros((num_queries, 2, encoded.shape[-1]))
        return embeds.index_put((torch.cat(rows), ), encoded)

    def decode_masks(self, sam_embeddings: torch.Tensor, prompts: torch.Tensor,
                     image_index: torch.Tensor, data_samples: SampleList) -> List[torch.Tensor]:
        """Projected [SEG] prompts (Q, P) -> per image, mask logits (N_i, H_i, W_i) at
        original size."""
        low_res = self.sam.decode(sam_embeddings, prompts, image_index)
        masks = []
        for b, sample in enumerate(data_samples):
            rows = (image_index == b).nonzero().squeeze(1)
            masks.append(
                self.sam.postprocess(low_res[rows], tuple(sample.sam_shape),
                                     tuple(sample.ori_shape)))
        return masks

    # ------------------------------------------------------------------ modes
    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: SampleList,
                mode: str = 'tensor'):
        """Dispatch to :meth:`loss`, :meth:`predict` or :meth:`_forward` (mmengine API)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f'mode must be loss, predict or tensor, got {mode!r}')

    def loss(self, inputs: Dict[str, torch.Tensor], data_samples: SampleList) -> dict:
        """Answer CE + mask BCE + Dice, masks at original resolution, mean over masks."""
        return self.loss_by_gt(*self.extract_feat(inputs), data_samples)[0]

    def loss_by_gt(self, sam_embeddings: torch.Tensor, image_features: torch.Tensor,
                   data_samples: SampleList) -> Tuple[dict, torch.Tensor]:
        """Losses of labeled samples on already encoded images.

        Returns:
            The loss dict and the projected ``[SEG]`` prompts (Q, P) of the queries, in
            :meth:`gather_queries` order (the token bank stores them).
        """
        texts, answers, index, names = self.gather_queries(data_samples)
        if not texts:  # no query in the batch: zero losses that still reach the graph
            zero = sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.
            return (dict(loss_ce=zero, loss_mask_bce=zero,
                         loss_mask_dice=zero), zero.new_zeros((0, self.sam.prompt_dim)))
        tokens = self.mllm.tokenize(texts, answers, index.device, names)
        anchors = self.anchor_embeds(data_samples, len(texts))
        ce, states, found = self.mllm.forward_full(image_features, index, tokens, anchors)
        if anchors is None and self.anchor_encoder is not None:
            # A batch without conditional queries leaves the anchor encoder out of the graph;
            # DDP (without find_unused_parameters) needs every trainable parameter in it.
            ce = ce + sum(p.sum() for p in self.anchor_encoder.parameters()) * 0.
        if not bool(found.all()):
            missing = [names[i] for i in (~found).nonzero().squeeze(1).tolist()]
            raise ValueError(f'answers without {SEG_TOKEN}: {missing[:3]}')
        prompts = self.projector(states.float())
        logits = self.decode_masks(sam_embeddings, prompts, index, data_samples)
        losses = dict(loss_ce=ce * self.ce_loss_weight)
        total = len(texts)
        for loss_module in (self.loss_mask_bce, self.loss_mask_dice):
            value = sum(
                loss_module(lg, s.gt_masks.to(lg.device)) * s.num_queries
                for lg, s in zip(logits, data_samples) if s.num_queries)
            losses[loss_module.loss_name] = value / total
        return losses, prompts

    def predict(self, inputs: Dict[str, torch.Tensor], data_samples: SampleList) -> SampleList:
        """Fill each sample's ``pred_masks`` (N, H, W) bool and ``pred_texts``."""
        return self.predict_with_features(*self.extract_feat(inputs), data_samples)

    def predict_with_features(self,
                              sam_embeddings: torch.Tensor,
                              image_features: torch.Tensor,
                              data_samples: SampleList,
                              mode: Optional[str] = None) -> SampleList:
        """:meth:`predict` on already encoded images (the inferencer reuses encodings).

        ``mode`` overrides ``test_cfg.mode`` for this call.
        """
        teacher = (mode or self.test_cfg['mode']) == 'teacher_forcing'
        texts, answers, index, names = self.gather_queries(
            data_samples, self.test_cfg['answer'] if teacher else None)
        if not texts:  # no query at all: empty predictions, as for an image without queries
            for sample in data_samples:
                sample.pred_masks = torch.zeros((0, *sample.ori_shape),
                                                dtype=torch.bool,
                                                device=sam_embeddings.device)
                sample.set_field([], 'pred_texts', field_type='metainfo')
            return data_samples
        anchors = self.anchor_embeds(data_samples, len(texts))
        if teacher:
            tokens = self.mllm.tokenize(texts, answers, index.device, names)
            _, states, found, *_ = self.mllm.forward_cached(image_features, index, tokens, anchors)
            replies = answers
        else:
            tokens = self.mllm.tokenize(texts, None, index.device, names)
            replies, states, found = self.mllm.generate(image_features, index, tokens, anchors,
                                                        self.test_cfg['max_new_tokens'])
        logits = self.decode_masks(sam_embeddings, self.projector(states.float()), index,
                                   data_samples)
        for b, (sample, mask_logits) in enumerate(zip(data_samples, logits)):
            rows = (index == b).nonzero().squeeze(1)
            # no [SEG] in the reply: the model answered without a mask
            sample.pred_masks = (mask_logits > 0) & found[rows].view(-1, 1, 1)
            sample.set_field([replies[i] for i in rows.tolist()],
                             'pred_texts',
                             field_type='metainfo')
        return data_samples

    def _forward(self, inputs: Dict[str, torch.Tensor],
                 data_samples: SampleList) -> List[torch.Tensor]:
        """Mask logits per image, teacher-forced with the samples' own answers."""
        sam_embeddings, image_features = self.extract_feat(inputs)
        texts, answers, index, names = self.gather_queries(data_samples)
        tokens = self.mllm.tokenize(texts, answers, index.device, names)
        _, states, _ = self.mllm.forward_full(image_features, index, tokens,
                                              self.anchor_embeds(data_samples, len(texts)))
        return self.decode_masks(sam_embeddings, self.projector(states.float()), index,
                                 data_samples)
