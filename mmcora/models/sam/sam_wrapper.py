"""SAM (segment-anything) as the mask head of a reasoning segmentor.

The wrapper holds segment-anything's own modules (``ImageEncoderViT``, ``PromptEncoder``,
``MaskDecoder``) under the names the official checkpoints use, so its ``state_dict`` has the
official format. The image encoder runs once per image; each ``[SEG]`` query becomes one
sparse prompt token for the mask decoder, as in LISA.
"""
import math
import os.path as osp
import pickle
from collections.abc import Mapping
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from segment_anything import sam_model_registry
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor, nn

from mmcora.engine import UnsafeCheckpointError
from ..pretrained import check_file

# Small dimensions for tests and the toy demo; any key may be overridden through ``tiny``.
TINY_DEFAULTS: Dict = dict(
    img_size=128,
    patch_size=16,
    embed_dim=32,
    depth=2,
    num_heads=2,
    prompt_embed_dim=32,
    window_size=4,
    global_attn_indexes=(1, ),
    decoder_mlp_dim=64,
    decoder_heads=2)

# SAM's normalisation constants (0-255 scale), identical for every official model.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def build_tiny_sam(img_size: int, patch_size: int, embed_dim: int, depth: int, num_heads: int,
                   prompt_embed_dim: int, window_size: int, global_attn_indexes: Tuple[int, ...],
                   decoder_mlp_dim: int, decoder_heads: int) -> Sam:
    """Build segment-anything's ``Sam`` exactly as ``_build_sam`` does, with small sizes."""
    if img_size % patch_size:
        raise ValueError(f'img_size {img_size} must be a multiple of patch_size {patch_size}')
    embedding_size = img_size // patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=depth,
            embed_dim=embed_dim,
            img_size=img_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=num_heads,
            patch_size=patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(global_attn_indexes),
            window_size=window_size,
            out_chans=prompt_embed_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_embed_dim,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(img_size, img_size),
            mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=prompt_embed_dim,
                mlp_dim=decoder_mlp_dim,
                num_heads=decoder_heads),
            transformer_dim=prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=prompt_embed_dim),
        pixel_mean=list(SAM_PIXEL_MEAN),
        pixel_std=list(SAM_PIXEL_STD))


def load_sam_state_dict(checkpoint: str) -> Dict[str, Tensor]:
    """Read an official segment-anything ``.pth`` (a plain state dict) without unpickling code.

    Raises:
        FileNotFoundError: ``checkpoint`` is not a file.
        UnsafeCheckpointError: The file holds pickled objects other than tensors.
        TypeError: The file is not a mapping from names to tensors.
        RuntimeError: The file is not a readable torch file (truncated or corrupt).
    """
    path = osp.expanduser(checkpoint)
    if not osp.isfile(path):
        raise FileNotFoundError(f'SAM checkpoint not found: {checkpoint}')
    try:
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses any global outside tensors and plain containers: unpickling
        # them could run arbitrary code, and an official SAM file never needs them.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else 'unpickling error'
        raise UnsafeCheckpointError(
            f'refusing to load SAM checkpoint {checkpoint}: it is not a plain state dict of '
            f'tensors ({reason})') from None
    except (RuntimeError, EOFError) as error:  # e.g. "failed finding central directory"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else 'end of file'
        raise RuntimeError(f'SAM checkpoint {checkpoint} is not a readable torch file '
                           f'({reason}): truncated or corrupt (an interrupted copy?)') from None
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise TypeError(f'SAM checkpoint {checkpoint} is not a state dict (name -> tensor) as '
                        f'the official segment-anything files are; got {type(state_dict)}')
    return dict(state_dict)


def _few(names: List[str], limit: int = 5) -> str:
    """``'a', 'b', ... (N in all)`` for error messages."""
    shown = ', '.join(repr(n) for n in names[:limit])
    return shown + (f', ... ({len(names)} in all)' if len(names) > limit else '')


@MODELS.register_module()
class SAMWrapper(nn.Module):
    """Segment-anything with a frozen image/prompt encoder and a trainable mask decoder.

    A plain ``nn.Module`` (not an mmengine ``BaseModule``) on purpose: an ``init_weights``
    pass of the enclosing segmentor must never re-initialise loaded SAM weights.

    Args:
        model_type (str): An official architecture of ``segment_anything.sam_model_registry``
            ('vit_h', 'vit_l', 'vit_b'). Ignored when ``tiny`` is given (then leave it at its
            default or write ``'tiny'``).
        checkpoint (str, optional): Path of a segment-anything ``.pth`` state dict to load
            (official files, or a tiny model's ``state_dict()``). Defaults to None (random).
        tiny (dict, optional): Build the same classes with small sizes; keys of
            :data:`TINY_DEFAULTS`, missing ones taken from there. Defaults to None.
        toy_pretrain (dict, optional): Load the toy foundation SAM of this architecture:
            :class:`~mmcora.models.foundation.SAMRecipe` overrides (``dict()`` for the
            default recipe). Pretrained on the toy foundation corpus on first use and cached
            by recipe (:func:`~mmcora.models.foundation.ensure_toy_sam`); only with ``tiny``,
            and not together with ``checkpoint``. Defaults to None (random weights).
        freeze_image_encoder (bool): No gradients and eval mode for the image encoder.
        freeze_prompt_encoder (bool): No gradients and eval mode for the prompt encoder.
        freeze_iou_head (bool): No gradients for the decoder's IoU head. Nothing supervises
            its output (LISA ignores it too), and a trainable parameter that never receives a
            gradient makes DDP fail unless ``find_unused_parameters`` is set. Defaults to True.
        encoder_batch_size (int): Images per image-encoder call; bounds activation memory
            (ViT-H at 1024² is heavy). Defaults to 1.
        image_encoder_dtype (str, optional): Keep the frozen image encoder in this dtype
            (``'bfloat16'``, the LLM's dtype in the paper-size configs: ViT-H's 632 M weights
            take half the memory and run in bf16 on tensor cores). The prompt encoder, the mask
            decoder and the losses stay in fp32: the embeddings are returned in fp32. Only with
            ``freeze_image_encoder`` (an optimizer would step bf16 weights). Defaults to None
            (the dtype the weights were built in, fp32).

    Attributes:
        pixel_mean (Tensor): (3, 1, 1) SAM normalisation mean, 0-255 scale (a buffer, not
            saved in the state dict, as in ``Sam``).
        pixel_std (Tensor): (3, 1, 1) SAM normalisation std, 0-255 scale.
    """

    def __init__(self,
                 model_type: str = 'vit_h',
                 checkpoint: Optional[str] = None,
                 tiny: Optional[dict] = None,
                 toy_pretrain: Optional[dict] = None,
                 freeze_image_encoder: bool = True,
                 freeze_prompt_encoder: bool = True,
                 freeze_iou_head: bool = True,
                 encoder_batch_size: int = 1,
                 image_encoder_dtype: Optional[str] = None) -> None:
        super().__init__()
        if encoder_batch_size < 1:
            raise ValueError(f'encoder_batch_size must be >= 1, got {encoder_batch_size}')
        encoder_dtype = None
        if image_encoder_dtype is not None:
            encoder_dtype = getattr(torch, str(image_encoder_dtype), None)
            if not isinstance(encoder_dtype, torch.dtype) or not encoder_dtype.is_floating_point:
                raise ValueError(f'model.sam.image_encoder_dtype must name a floating torch dtype '
                                 f"such as 'bfloat16', got {image_encoder_dtype!r}")
            if not freeze_image_encoder:
                raise ValueError('model.sam.image_encoder_dtype needs freeze_image_encoder=True: '
                                 'a trained encoder keeps fp32 weights (use --amp for autocast)')
        if toy_pretrain is not None and (tiny is None or checkpoint is not None):
            raise ValueError('toy_pretrain makes the checkpoint of a tiny SAM: give it with '
                             'tiny=dict(...) and without checkpoint')
        sam = self._build_sam(model_type, tiny)
        # The official parameter names (image_encoder.*, prompt_encoder.*, mask_decoder.*)
        # are kept, so official checkpoints load into this module as they are.
        self.image_encoder: ImageEncoderViT = sam.image_encoder
        self.prompt_encoder: PromptEncoder = sam.prompt_encoder
        self.mask_decoder: MaskDecoder = sam.mask_decoder
        self.register_buffer('pixel_mean', sam.pixel_mean.clone(), persistent=False)
        self.register_buffer('pixel_std', sam.pixel_std.clone(), persistent=False)
        self.encoder_batch_size = encoder_batch_size
        self._encoder_dtype_set = encoder_dtype is not None
        if toy_pretrain is not None:
            from ..foundation import ensure_toy_sam
            checkpoint = ensure_toy_sam({**TINY_DEFAULTS, **tiny}, toy_pretrain)
        if checkpoint is not None:
            self.load_sam_checkpoint(checkpoint)
        if encoder_dtype is not None:  # after loading the (fp32) official weights
            self.image_encoder.to(encoder_dtype)

        # Names, not module references: survives deepcopy (the stage-3 frozen decoder copy).
        self.frozen_names: Tuple[str, ...] = tuple(name
                                                   for name, freeze in (('image_encoder',
                                                                         freeze_image_encoder),
                                                                        ('prompt_encoder',
                                                                         freeze_prompt_encoder))
                                                   if freeze)
        for name in self.frozen_names:
            getattr(self, name).requires_grad_(False)
        if freeze_iou_head:
            self.mask_decoder.iou_prediction_head.requires_grad_(False)
        self.train(self.training)

    @staticmethod
    def check_paths(cfg: dict, key: str = 'model.sam') -> None:
        """Check that the ``checkpoint`` of a config exists before anything is built (the
        segmentor's first step: before the language model loads).

        Args:
            cfg (dict): A ``SAMWrapper`` config.
            key (str): Its config key.
        """
        if cfg.get('checkpoint') is not None and cfg.get('toy_pretrain') is None:
            check_file(cfg['checkpoint'], f'{key}.checkpoint', 'SAM checkpoint')

    @staticmethod
    def _build_sam(model_type: str, tiny: Optional[dict]) -> Sam:
        """Build an official architecture (random weights) or a tiny one."""
        if tiny is not None:
            if model_type not in ('vit_h', 'tiny'):
                raise ValueError(f'give either model_type ({model_type!r}) or tiny, not both')
            unknown = sorted(set(tiny) - set(TINY_DEFAULTS))
            if unknown:
                raise ValueError(f'unknown tiny SAM keys {unknown}; '
                                 f'expected some of {sorted(TINY_DEFAULTS)}')
            return build_tiny_sam(**{**TINY_DEFAULTS, **tiny})
        if model_type not in sam_model_registry:
            raise ValueError(f'unknown SAM model_type {model_type!r}; expected one of '
                             f'{sorted(sam_model_registry)} or a tiny=dict(...)')
        # checkpoint=None: segment-anything's own loading unpickles without weights_only.
        return sam_model_registry[model_type](checkpoint=None)

    def load_sam_checkpoint(self, checkpoint: str) -> None:
        """Load a segment-anything state dict, checking names and shapes first.

        Raises:
            RuntimeError: Missing, unexpected or mis-shaped parameters; the message names the
                file and a few of the offending keys.
        """
        state_dict = load_sam_state_dict(checkpoint)
        own = self.state_dict()
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        mismatched = sorted(
            k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
        problems = []
        if missing:
            problems.append(f'missing keys: {_few(missing)}')
        if unexpected:
            problems.append(f'unexpected keys: {_few(unexpected)}')
        if mismatched:
            problems.append('shape mismatch: ' + _few(
                [f'{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}' for k in mismatched]))
        if problems:
            raise RuntimeError(f'SAM checkpoint {checkpoint} does not fit this SAMWrapper '
                               f'({self._describe()}): ' + '; '.join(problems))
        self.load_state_dict(state_dict, strict=True)

    def _describe(self) -> str:
        encoder = self.image_encoder
        return (f'img_size={self.img_size}, encoder embed_dim='
                f'{encoder.patch_embed.proj.out_channels}, depth={len(encoder.blocks)}, '
                f'prompt_dim={self.prompt_dim}')

    @property
    def prompt_dim(self) -> int:
        """Channels of a sparse prompt token and of the image embedding (256 official)."""
        return self.prompt_encoder.embed_dim

    @property
    def img_size(self) -> int:
        """Side of the square, padded encoder input (1024 official)."""
        return self.image_encoder.img_size

    @property
    def embedding_size(self) -> Tuple[int, int]:
        """Spatial size of the image embedding, (S/p, S/p)."""
        return tuple(self.prompt_encoder.image_embedding_size)

    def train(self, mode: bool = True) -> 'SAMWrapper':
        """Set train/eval mode; frozen parts always stay in eval mode."""
        super().train(mode)
        # Frozen parts must not change behaviour in training (e.g. a future dropout); the
        # runner calls model.train() every epoch, so this is enforced here, not once.
        for name in getattr(self, 'frozen_names', ()):  # absent while __init__ runs
            getattr(self, name).eval()
        return self

    def encode_images(self, images: Tensor) -> Tensor:
        """Run the image encoder once per image, ``encoder_batch_size`` images per call.

        Args:
            images (Tensor): (B, 3, S, S) normalised images, padded right/bottom to S =
                :attr:`img_size`.

        Returns:
            Tensor: (B, prompt_dim, S/p, S/p) image embeddings (S/p = 64 for official SAM), in
            fp32 when ``image_encoder_dtype`` keeps the encoder in another dtype.
        """
        if images.dim() != 4 or images.shape[1] != 3 or \
                tuple(images.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f'expected images of shape (B, 3, {self.img_size}, '
                             f'{self.img_size}), got {tuple(images.shape)}')
        frozen = 'image_encoder' in self.frozen_names
        # The data preprocessor gives fp32; the model may be in bf16/fp16.
        weight = self.image_encoder.patch_embed.proj.weight
        images = images.to(weight.device, weight.dtype)
        if images.shape[0] == 0:
            empty = images.new_zeros(0, self.prompt_dim, *self.embedding_size)
            return empty.float() if self._encoder_dtype_set else empty
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            embeddings = torch.cat([
                self.image_encoder(chunk) for chunk in images.split(self.encoder_batch_size, dim=0)
            ])
        # an encoder kept in bf16 (image_encoder_dtype) feeds the fp32 decoder
        return embeddings.float() if self._encoder_dtype_set else embeddings

    def decode(self, image_embeddings: Tensor, prompt_embeddings: Tensor,
               image_index: Tensor) -> Tensor:
        """Predict one low-resolution mask per query, one decoder call per image.

        ``MaskDecoder.predict_masks`` repeats a single image embedding for all prompts of a
        call, so the queries are grouped by image and each group is decoded against its own
        embedding; the output keeps the query order.

        Args:
            image_embeddings (Tensor): (B, prompt_dim, h, w) from :meth:`encode_images`.
            prompt_embeddings (Tensor): (Q, prompt_dim) one sparse prompt token per query.
            image_index (Tensor): (Q, ) long, the image of each query, in [0, B).

        Returns:
            Tensor: (Q, 4h, 4w) mask logits (256×256 for official SAM).
        """
        num_queries = prompt_embeddings.shape[0]
        if prompt_embeddings.dim() != 2 or prompt_embeddings.shape[1] != self.prompt_dim:
            raise ValueError(f'expected prompt_embeddings of shape (Q, {self.prompt_dim}), '
                             f'got {tuple(prompt_embeddings.shape)}')
        if image_index.shape != (num_queries, ):
            raise ValueError(f'image_index must have shape ({num_queries},), '
                             f'got {tuple(image_index.shape)}')
        h, w = image_embeddings.shape[-2:]
        if num_queries == 0:
            return prompt_embeddings.new_zeros(0, 4 * h, 4 * w)
        image_index = image_index.to(image_embeddings.device, torch.long)
        if int(image_index.min()) < 0 or int(image_index.max()) >= image_embeddings.shape[0]:
            raise IndexError(f'image_index out of range [0, {image_embeddings.shape[0]}): '
                             f'{image_index.tolist()}')
        prompts = prompt_embeddings.to(image_embeddings.device, image_embeddings.dtype)
        image_pe = self.dense_positional_encoding().to(image_embeddings.dtype)

        masks, order = [], []
        for image in image_index.unique().tolist():
            queries = torch.nonzero(image_index == image).squeeze(1)
            masks.append(
                self._decode_one_image(image_embeddings[image:image + 1], image_pe,
                                       prompts[queries]))
            order.append(queries)
        # Undo the grouping: row i of the concatenation is query order[i].
        inverse = torch.argsort(torch.cat(order))
        return torch.cat(masks)[inverse]

    def dense_positional_encoding(self) -> Tensor:
        """``PromptEncoder.get_dense_pe()``, computed in fp32 whatever the model's dtype.

        segment-anything builds the coordinate grid in fp32 and multiplies it by the random
        Gaussian matrix buffer, which fails once the model is cast to bf16/fp16 (LISA patches
        the same spot). The operations below are the original ones, with the matrix in fp32.

        Returns:
            Tensor: (1, prompt_dim, h, w) fp32 positional encoding of the embedding grid.
        """
        pe_layer = self.prompt_encoder.pe_layer
        matrix = pe_layer.positional_encoding_gaussian_matrix.float()
        h, w = self.embedding_size
        grid = torch.ones((h, w), device=matrix.device, dtype=torch.float32)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        coords = 2 * torch.stack([x_embed, y_embed], dim=-1) - 1
        coords = 2 * math.pi * (coords @ matrix)
        pe = torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)
        return pe.permute(2, 0, 1).unsqueeze(0)

    def _decode_one_image(self, image_embedding: Tensor, image_pe: Tensor,
                          prompts: Tensor) -> Tensor:
        """Decode all queries of one image.

        Args:
            image_embedding (Tensor): (1, C, h, w).
            image_pe (Tensor): (1, C, h, w) dense positional encoding.
            prompts (Tensor): (n, C) sparse prompt tokens.

        Returns:
            Tensor: (n, 4h, 4w) mask logits.
        """
        n = prompts.shape[0]
        h, w = image_embedding.shape[-2:]
        # No mask prompt: SAM's learned "no mask" embedding everywhere, as its PromptEncoder
        # does when masks=None.
        dense = self.prompt_encoder.no_mask_embed.weight.to(image_embedding.dtype)
        dense = dense.reshape(1, -1, 1, 1).expand(n, -1, h, w)
        masks, _ = self.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=prompts.unsqueeze(1),
            dense_prompt_embeddings=dense,
            multimask_output=False)
        return masks[:, 0]

    def postprocess(self, low_res_logits: Tensor, resized_hw: Tuple[int, int],
                    original_hw: Tuple[int, int]) -> Tensor:
        """Bring decoder logits back to the original image, as SAM and LISA do.

        Upsample to the padded input size (fp32), crop the right/bottom padding to the
        resized image, then resize to the original size.

        Args:
            low_res_logits (Tensor): (Q, 4h, 4w) logits of one image's queries.
            resized_hw (tuple[int, int]): (h', w') of the image after the longest-side
                resize, before padding (see :meth:`preprocess_geometry`).
            original_hw (tuple[int, int]): (H, W) of the original image.

        Returns:
            Tensor: (Q, H, W) fp32 logits.
        """
        new_h, new_w = (int(v) for v in resized_hw)
        if not (0 < new_h <= self.img_size and 0 < new_w <= self.img_size):
            raise ValueError(f'resized_hw {tuple(resized_hw)} must lie within the padded '
                             f'input {self.img_size}x{self.img_size}')
        original_hw = tuple(int(v) for v in original_hw)
        if low_res_logits.shape[0] == 0:
            return low_res_logits.new_zeros(0, *original_hw, dtype=torch.float32)
        # fp32: bf16 bilinear upsampling at 1024² loses the sign of small logits.
        logits = low_res_logits.float().unsqueeze(1)
        logits = F.interpolate(
            logits, (self.img_size, self.img_size), mode='bilinear', align_corners=False)
        logits = logits[..., :new_h, :new_w]
        logits = F.interpolate(logits, original_hw, mode='bilinear', align_corners=False)
        return logits.squeeze(1)

    @staticmethod
    def preprocess_geometry(h: int, w: int, img_size: int) -> Tuple[int, int, float]:
        """Size after resizing the longest side to ``img_size``: segment-anything's
        ``ResizeLongestSide.get_preprocess_shape`` and the scale it applies.

        Returns:
            tuple[int, int, float]: (new_h, new_w, scale) with scale = img_size / max(h, w).
        """
        new_h, new_w = ResizeLongestSide.get_preprocess_shape(h, w, img_size)
        return new_h, new_w, img_size * 1.0 / max(h, w)
