"""Seg-Zero's frozen promptable segmenters: a box and two positive points -> one mask.

Seg-Zero prompts SAM 2 with the reasoner's box and both points as positive clicks, keeps the
best of SAM 2's three multimask outputs by predicted IoU, and never trains it. Two
implementations share one interface (``encode`` the images once, then ``segment`` any number
of prompts on them):

- :class:`SAM2Segmenter`: transformers' ``Sam2Model`` and ``Sam2Processor`` (a Hugging Face
  directory such as ``facebook/sam2-hiera-large``, or a tiny one written offline); the default.
- :class:`SAMPromptSegmenter`: segment-anything's ``Sam`` with its ``SamPredictor`` (official
  ``.pth`` files, or the tiny SAM of the CORA configs).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from ...utils import main_process_first
from ..pretrained import check_file, check_hf_directory

HF_NAME = ('SAM 2', 'sam2-hiera-large')  # what and an example, for messages
Box = Sequence[float]
Points = Sequence[Sequence[float]]


class FrozenSegmenter(nn.Module):
    """Common part: no gradients, always in eval mode, masks as (H, W) bool arrays."""

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> 'FrozenSegmenter':
        """The segmenter is frozen: it stays in eval mode whatever the runner asks."""
        return super().train(False)

    def encode(self, images: Sequence[np.ndarray]) -> list:
        """Encode RGB uint8 (H, W, 3) images once; the result goes to :meth:`segment`."""
        raise NotImplementedError

    def segment(self, encoded: list, image: int, box: Box, points: Points) -> np.ndarray:
        """(H, W) bool mask of ``image`` for a box (x1, y1, x2, y2) and two positive points
        (x, y), all in the image's original pixels."""
        raise NotImplementedError


@MODELS.register_module()
class SAM2Segmenter(FrozenSegmenter):
    """SAM 2 through transformers: ``Sam2Processor`` resizes and normalises (1024 x 1024),
    ``Sam2Model.get_image_embeddings`` runs once per image, the prompt decoder once per query.

    Args:
        pretrained (str, optional): A Hugging Face directory with ``Sam2Model`` weights and a
            ``Sam2Processor`` config. With ``tiny``, where the tiny model is written.
        tiny (dict, optional): Write (once) and load a tiny SAM 2 of these
            :data:`~mmcora.models.segzero.tiny_sam2.DEFAULT_SPEC` overrides at ``pretrained``.
        dtype (str): Weights' dtype ('float32', 'bfloat16'); Seg-Zero runs SAM 2 in bf16.
        multimask_output (bool): Predict SAM 2's three masks and keep the one of highest
            predicted IoU (Seg-Zero's setting); False takes the single-mask output.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 tiny: Optional[dict] = None,
                 dtype: str = 'float32',
                 multimask_output: bool = True) -> None:
        super().__init__()
        from transformers import Sam2Model, Sam2Processor
        if pretrained is None:
            raise ValueError('SAM2Segmenter needs pretrained= (a Hugging Face directory, or '
                             'where the tiny model is written)')
        if tiny is not None:
            from .tiny_sam2 import ensure_tiny_sam2
            main_process_first(ensure_tiny_sam2, pretrained, **tiny)
        check_hf_directory(pretrained, 'model.segmenter.pretrained', *HF_NAME)
        self.processor = Sam2Processor.from_pretrained(pretrained)
        self.model = Sam2Model.from_pretrained(pretrained, dtype=getattr(torch, dtype))
        self.multimask_output = multimask_output
        self.freeze()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @staticmethod
    def check_paths(cfg: dict, key: str = 'model.segmenter') -> None:
        """Check the ``pretrained`` directory of a config before anything is built (the
        segmentor's first step); nothing to check when ``tiny`` writes it.

        Args:
            cfg (dict): A ``SAM2Segmenter`` config.
            key (str): Its config key.
        """
        if cfg.get('tiny') is None and cfg.get('pretrained') is not None:
            check_hf_directory(cfg['pretrained'], f'{key}.pretrained', *HF_NAME)

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray]) -> list:
        """Per image: (multi-level embeddings, original size)."""
        encoded = []
        for img in images:
            batch = self.processor(images=[img], return_tensors='pt')
            pixels = batch['pixel_values'].to(self.device, next(self.model.parameters()).dtype)
            encoded.append((self.model.get_image_embeddings(pixels), batch['original_sizes']))
        return encoded

    @torch.no_grad()
    def segment(self, encoded: list, image: int, box: Box, points: Points) -> np.ndarray:
        embeddings, original_sizes = encoded[image]
        clicks = {}
        if len(points):
            clicks = dict(
                input_points=[[[list(map(float, p)) for p in points]]],
                input_labels=[[[1] * len(points)]])
        prompt = self.processor(
            images=None,
            original_sizes=original_sizes,
            input_boxes=[[list(map(float, box))]],
            return_tensors='pt',
            **clicks)
        dtype = embeddings[-1].dtype
        prompt = {
            k: v.to(self.device, dtype if v.is_floating_point() else None)
            for k, v in prompt.items() if k != 'original_sizes'
        }
        out = self.model(
            image_embeddings=embeddings, multimask_output=self.multimask_output, **prompt)
        masks = self.processor.post_process_masks(out.pred_masks.float().cpu(),
                                                  original_sizes.cpu())[0][0]  # (M, H, W)
        best = int(out.iou_scores[0, 0].float().argmax())
        return masks[best].numpy().astype(bool)


@MODELS.register_module()
class SAMPromptSegmenter(FrozenSegmenter):
    """Segment-anything's SAM as Seg-Zero's segmenter, through its ``SamPredictor``.

    Args:
        model_type (str): 'vit_h', 'vit_l' or 'vit_b' (ignored with ``tiny``).
        checkpoint (str, optional): A segment-anything ``.pth`` state dict.
        tiny (dict, optional): A tiny SAM (keys of ``SAMWrapper``'s ``TINY_DEFAULTS``).
        toy_pretrain (dict, optional): Load the toy foundation SAM of the ``tiny``
            architecture (``SAMRecipe`` overrides, ``dict()`` for the default recipe):
            promptable segmentation from box and point prompts, pretrained on the toy
            foundation corpus on first use and cached by recipe, as CORA's toy SAM is. Only
            with ``tiny`` and without ``checkpoint``.
        multimask_output (bool): Best of three masks by predicted IoU.
    """

    def __init__(self,
                 model_type: str = 'vit_h',
                 checkpoint: Optional[str] = None,
                 tiny: Optional[dict] = None,
                 toy_pretrain: Optional[dict] = None,
                 multimask_output: bool = True) -> None:
        super().__init__()
        from segment_anything import SamPredictor

        from ..sam.sam_wrapper import TINY_DEFAULTS, SAMWrapper, load_sam_state_dict
        if toy_pretrain is not None:
            if tiny is None or checkpoint is not None:
                raise ValueError('SAMPromptSegmenter: toy_pretrain makes the checkpoint of a '
                                 'tiny SAM; give it with tiny=dict(...) and without checkpoint')
            from ..foundation import ensure_toy_sam
            checkpoint = main_process_first(ensure_toy_sam, {**TINY_DEFAULTS, **tiny}, toy_pretrain)
        self.sam = SAMWrapper._build_sam(model_type, tiny)
        if checkpoint is not None:
            self.sam.load_state_dict(load_sam_state_dict(checkpoint), strict=True)
        self.predictor = SamPredictor(self.sam)
        self.multimask_output = multimask_output
        self.freeze()

    @staticmethod
    def check_paths(cfg: dict, key: str = 'model.segmenter') -> None:
        """Check that the ``checkpoint`` of a config exists before anything is built.

        Args:
            cfg (dict): A ``SAMPromptSegmenter`` config.
            key (str): Its config key.
        """
        if cfg.get('checkpoint') is not None and cfg.get('toy_pretrain') is None:
            check_file(cfg['checkpoint'], f'{key}.checkpoint', 'SAM checkpoint')

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray]) -> List[Tuple[torch.Tensor, tuple, tuple]]:
        """Per image: (embedding, input size, original size), as ``SamPredictor`` keeps them."""
        encoded = []
        for img in images:
            self.predictor.set_image(np.ascontiguousarray(img), image_format='RGB')
            encoded.append(
                (self.predictor.features, self.predictor.input_size, self.predictor.original_size))
        self.predictor.reset_image()
        return encoded

    @torch.no_grad()
    def segment(self, encoded: list, image: int, box: Box, points: Points) -> np.ndarray:
        p = self.predictor
        p.features, p.input_size, p.original_size = encoded[image]
        p.is_image_set = True
        try:
            masks, scores, _ = p.predict(
                point_coords=np.asarray(points, np.float32).reshape(-1, 2) if len(points) else None,
                point_labels=np.ones(len(points), np.int64) if len(points) else None,
                box=np.asarray(box, np.float32),
                multimask_output=self.multimask_output)
        finally:
            p.reset_image()
        return masks[int(np.argmax(scores))].astype(bool)
