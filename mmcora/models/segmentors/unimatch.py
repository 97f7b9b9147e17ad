"""UniMatch (Yang et al., CVPR 2023) around any mmseg ``EncoderDecoder``.

One training step on ``Bl`` labeled and ``Bu`` unlabeled images (each unlabeled image comes
as a weak view and two pixel-aligned strong views):

1. labeled and weak views go through the network together; the decode head also sees the
   features with channel dropout (feature perturbation, ``fp``);
2. weak predictions, detached, are the pseudo-labels (with their confidence);
3. each strong view gets a CutMix box (probability ``cutmix_prob``) pasted from another
   unlabeled image of the batch, and the pseudo-label, confidence and ignore map are mixed
   the same way (the UniMatch author mixes with a shuffled batch; we roll it by one so that
   the source is always another image);
4. ``loss = (sup_weight * sup + strong_weight * (s1 + s2) + fp_weight * fp) / normalizer``
   with ``(1, .25, .5) / 2``; unlabeled terms are per-pixel CE over pixels with confidence
   >= ``conf_thresh`` and summed over the batch's non-ignored pixels.

The network itself is the teacher (UniMatch v1 has no EMA model). As mmdet's
``SemiBaseDetector`` subclasses ``BaseDetector``, ``UniMatch`` is an mmseg ``BaseSegmentor``:
its ``forward`` (and the error for an unknown mode) is mmseg's, and ``extract_feat``,
``encode_decode``, ``predict`` and ``_forward`` are the wrapped segmentor's (e.g.
sliding-window inference)::

    loss(inputs, data_samples)       # inputs: {'sup': (Bl, 3, H, W), 'unsup': (V, Bu, 3, H, W)}
      segmentor.extract_feat(labeled + weak) -> decode (plain and channel-dropped features)
      loss_by_gt -----------------------------> 'sup.*' (decode and auxiliary heads)
      get_pseudo_labels ----------------------> pseudo-label, confidence, ignore (Bu, H, W)
      loss_by_pseudo -------------------------> 'unsup.loss_s1', 'unsup.loss_s2', 'unsup.loss_fp'
        cutmix_boxes, segmentor.extract_feat(strong views), masked_ce
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList, add_prefix

OLD_WEIGHTS_KEY = 'weights'  # (sup, s1, s2, fp) before the weights had names


@MODELS.register_module()
class UniMatch(BaseSegmentor):
    """Semi-supervised training of an mmseg segmentor with UniMatch.

    Args:
        segmentor (ConfigType): Config of the ``EncoderDecoder`` to train.
        semi_train_cfg (OptConfigType): ``conf_thresh`` (0.95; 0 for Cityscapes), ``fp_dropout``
            (0.5), ``cutmix_prob`` (0.5), ``cutmix_area`` ((0.02, 0.4) of the image),
            ``cutmix_ratio`` ((0.3, 1 / 0.3)), ``sup_weight`` (1.0), ``strong_weight`` (0.25, each
            of the two strong views), ``fp_weight`` (0.5), ``normalizer`` (2.0).
        data_preprocessor (OptConfigType): Keys overriding the segmentor's own ``data_preprocessor``
            (e.g. ``size``), whose normalisation and padding are kept and whose type becomes
            ``SemiSegDataPreProcessor`` unless a ``type`` is given here.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 semi_train_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        segmentor = dict(segmentor)
        # one normalisation for both: a supervised checkpoint warm-starts UniMatch unchanged
        preprocessor = {
            **(segmentor.pop('data_preprocessor', None) or {}), 'type': 'SemiSegDataPreProcessor',
            **(data_preprocessor or {})
        }
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.segmentor = MODELS.build(segmentor)
        self.semi_train_cfg = dict(
            conf_thresh=0.95,
            fp_dropout=0.5,
            cutmix_prob=0.5,
            cutmix_area=(0.02, 0.4),
            cutmix_ratio=(0.3, 1 / 0.3),
            sup_weight=1.0,
            strong_weight=0.25,
            fp_weight=0.5,
            normalizer=2.0)
        unknown = sorted(set(semi_train_cfg or {}) - set(self.semi_train_cfg))
        if unknown:
            hint = (' (the weights are now sup_weight, strong_weight and fp_weight)'
                    if OLD_WEIGHTS_KEY in unknown else '')
            raise ValueError(f'unknown semi_train_cfg keys {unknown}{hint}; expected some of '
                             f'{sorted(self.semi_train_cfg)}')
        self.semi_train_cfg.update(semi_train_cfg or {})
        self._register_load_state_dict_pre_hook(self._accept_plain_segmentor_keys)

    @staticmethod
    def _accept_plain_segmentor_keys(state_dict: dict, prefix: str, *args) -> None:
        """Let ``load_from`` take a checkpoint of the wrapped segmentor alone.

        A supervised mmseg checkpoint has ``backbone.*``/``decode_head.*`` keys; UniMatch's
        are ``segmentor.*``. Without any ``segmentor.`` key, prefix them (in place, as
        PyTorch's pre-hooks do), so a supervised model can warm-start UniMatch.
        """
        ours = prefix + 'segmentor.'
        if any(k.startswith(ours) for k in state_dict):
            return
        for key in [k for k in state_dict if k.startswith(prefix)]:
            state_dict[ours + key[len(prefix):]] = state_dict.pop(key)

    # ------------------------------------------------------------------ the wrapped model
    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        return self.segmentor.extract_feat(inputs)

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        return self.segmentor.encode_decode(inputs, batch_img_metas)

    def predict(self, inputs: torch.Tensor, data_samples: SampleList = None) -> SampleList:
        return self.segmentor.predict(inputs, data_samples)

    def _forward(self, inputs: torch.Tensor, data_samples: SampleList = None):
        return self.segmentor._forward(inputs, data_samples)

    # ------------------------------------------------------------------ training

    def decode(self, feats: List[torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
        """Decode-head logits resized to ``size`` (B, C, H, W)."""
        head = self.segmentor.decode_head
        return resize(head(feats), size=size, mode='bilinear', align_corners=head.align_corners)

    def loss(self, inputs: Dict[str, torch.Tensor], data_samples: Dict[str, SampleList]) -> dict:
        cfg = self.semi_train_cfg
        img_x, views = inputs['sup'], inputs['unsup']
        img_w, strong = views[0], views[1:]
        num_x, size = img_x.shape[0], img_x.shape[-2:]
        feats = self.segmentor.extract_feat(torch.cat([img_x, img_w]))
        # feature perturbation: the head also sees channel-dropped features (UniMatch's fp)
        dropped = [F.dropout2d(f, cfg['fp_dropout'], training=True) for f in feats]
        logits, logits_fp = self.decode([torch.cat([f, d]) for f, d in zip(feats, dropped)],
                                        size).chunk(2)
        losses = self.loss_by_gt([f[:num_x] for f in feats], logits[:num_x], data_samples['sup'])
        pseudo, conf, ignore = self.get_pseudo_labels(logits[num_x:], data_samples['unsup'])
        losses.update(self.loss_by_pseudo(strong, logits_fp[num_x:], pseudo, conf, ignore))
        return losses

    def loss_by_gt(self, feats_x: List[torch.Tensor], logits_x: torch.Tensor,
                   samples: SampleList) -> dict:
        """The wrapped segmentor's own decode (and auxiliary) losses on labeled images."""
        weight = self.semi_train_cfg['sup_weight'] / self.semi_train_cfg['normalizer']
        losses = self.segmentor.decode_head.loss_by_feat(logits_x, samples)
        if self.segmentor.with_auxiliary_head:
            losses.update(self.segmentor._auxiliary_head_forward_train(feats_x, samples))
        return add_prefix({k: (v * weight if 'loss' in k else v) for k, v in losses.items()}, 'sup')

    @torch.no_grad()
    def get_pseudo_labels(self, logits_w: torch.Tensor,
                          samples: SampleList) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pseudo-label (Bu, H, W), its confidence, and the ignore map (255 = padding)."""
        conf, pseudo = logits_w.detach().softmax(dim=1).max(dim=1)
        ignore = torch.stack([s.gt_sem_seg.data[0] for s in samples]).to(pseudo.device)
        return pseudo, conf, ignore

    def cutmix_boxes(self, num: int, size: Tuple[int, int], device) -> torch.Tensor:
        """(num, H, W) bool boxes; a box is empty with probability 1 - ``cutmix_prob``."""
        cfg = self.semi_train_cfg
        h, w = size
        boxes = torch.zeros((num, h, w), dtype=torch.bool, device=device)
        for i in range(num):
            if float(torch.rand(1)) > cfg['cutmix_prob']:
                continue
            area = float(torch.empty(1).uniform_(*cfg['cutmix_area'])) * h * w
            low, high = cfg['cutmix_ratio']
            ratio = float(
                torch.exp(
                    torch.empty(1).uniform_(
                        torch.log(torch.tensor(low)), torch.log(torch.tensor(high)))))
            bw, bh = min(w, int((area * ratio)**0.5)), min(h, int((area / ratio)**0.5))
            x = int(torch.randint(0, w - bw + 1, (1, )))
            y = int(torch.randint(0, h - bh + 1, (1, )))
            boxes[i, y:y + bh, x:x + bw] = True
        return boxes

    def loss_by_pseudo(self, strong: torch.Tensor, logits_fp: torch.Tensor, pseudo: torch.Tensor,
                       conf: torch.Tensor, ignore: torch.Tensor) -> dict:
        """CutMixed strong-view losses and the feature-perturbation loss.

        Args:
            strong (Tensor): (V, Bu, 3, H, W) strong views.
            logits_fp (Tensor): (Bu, C, H, W) logits of the dropped features of the weak views.
            pseudo, conf, ignore (Tensor): (Bu, H, W) from :meth:`get_pseudo_labels`.
        """
        cfg = self.semi_train_cfg
        num, size = strong.shape[1], strong.shape[-2:]
        source = torch.roll(torch.arange(num, device=strong.device), 1)
        mixed_imgs, targets = [], []
        for view in strong:
            box = self.cutmix_boxes(num, size, strong.device)
            mixed_imgs.append(torch.where(box[:, None], view[source], view))
            targets.append(tuple(torch.where(box, t[source], t) for t in (pseudo, conf, ignore)))
        feats = self.segmentor.extract_feat(torch.cat(mixed_imgs))
        logits_s = self.decode(feats, size).chunk(len(strong))
        losses = {}
        for i, (logits, (target, confidence, ignored)) in enumerate(zip(logits_s, targets)):
            losses[f'loss_s{i + 1}'] = self.masked_ce(
                logits, target, confidence, ignored) * cfg['strong_weight'] / cfg['normalizer']
        losses['loss_fp'] = self.masked_ce(logits_fp, pseudo, conf,
                                           ignore) * cfg['fp_weight'] / cfg['normalizer']
        return add_prefix(losses, 'unsup')

    def masked_ce(self, logits: torch.Tensor, target: torch.Tensor, conf: torch.Tensor,
                  ignore: torch.Tensor) -> torch.Tensor:
        """CE over confident pixels, normalised by the number of non-ignored pixels."""
        valid = ignore != 255
        loss = F.cross_entropy(logits, target, reduction='none')
        keep = ((conf >= self.semi_train_cfg['conf_thresh']) & valid).float()
        return (loss * keep).sum() / valid.sum().clamp(min=1)


@MODELS.register_module()
class UniMatchGTPseudoLabels(UniMatch):
    """UniMatch trained with the unlabeled images' ground truth as pseudo-labels (a diagnostic).

    Everything else is UniMatch's (views, CutMix, fp branch, weights, ``/ 2``), so the gap
    between this upper bound and UniMatch measures what its own pseudo-labels cost, and the gap
    between this and the plain segmentor trained on all labels measures what the unlabeled-branch
    machinery costs. The unlabeled pipeline must load the label maps (``LoadAnnotations``
    instead of ``LoadEmptyAnnotations``); their void and padded pixels (255) are ignored.
    """

    @torch.no_grad()
    def get_pseudo_labels(self, logits_w: torch.Tensor,
                          samples: SampleList) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The label map (Bu, H, W) (void set to 0), confidence 1, and the map itself as ignore."""
        empty = [s.img_path for s in samples if s.get('seg_map_path', '') is None]
        if empty:
            raise ValueError(f'UniMatchGTPseudoLabels needs the label maps of the unlabeled '
                             f'images, but {empty[0]} came through LoadEmptyAnnotations: use '
                             f'LoadAnnotations in the unlabeled pipeline')
        labels = torch.stack([s.gt_sem_seg.data[0] for s in samples]).to(logits_w.device).long()
        pseudo = labels.masked_fill(labels == 255, 0)
        return pseudo, torch.ones_like(logits_w[:, 0]), labels
