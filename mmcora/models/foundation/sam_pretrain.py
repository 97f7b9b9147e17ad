"""Promptable-segmentation pretraining of the tiny SAM, a miniature of SAM's own training.

SAM learned from SA-1B: for each mask, a box or points are sampled as the prompt, and the
mask decoder is trained with focal + dice (20 : 1) on its prediction and MSE on its IoU
estimate; a single point is ambiguous, so it gets three outputs and only the best one is
supervised. Here the masks are the foundation corpus's segments (thing instances and stuff
pieces, class-agnostic as SA-1B is), images are preprocessed exactly as
:class:`~mmcora.models.sam.SAMWrapper` does (longest side to ``img_size``, SAM's mean and std,
padding right/bottom), and the whole model (image encoder, prompt encoder, mask decoder) is
trained, as SAM was. Two differences, for the CPU budget: the losses are taken on the
decoder's low-resolution output (a quarter of the input side) against the masks' pixel
fractions at that resolution, not on masks upsampled to the input size; and the image
encoder, which cannot start from ImageNet weights here, also learns to classify the
segments (:attr:`SAMRecipe.class_weight`).
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import nn

from ..sam.sam_wrapper import SAMWrapper
from .corpus import FoundationCorpus, Region
from .resume import read_resume_state, write_resume_state


def sam_input(sam: Sam, image: np.ndarray) -> Tuple[torch.Tensor, float]:
    """(H, W, 3) uint8 RGB -> ((3, S, S) normalised padded tensor, scale)."""
    size = sam.image_encoder.img_size
    new_h, new_w, scale = SAMWrapper.preprocess_geometry(*image.shape[:2], size)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    if (new_h, new_w) != tuple(image.shape[:2]):
        x = F.interpolate(
            x[None], (new_h, new_w), mode='bilinear', antialias=True, align_corners=False)[0]
    x = (x - sam.pixel_mean) / sam.pixel_std
    return F.pad(x, (0, size - new_w, 0, size - new_h)), scale


def sample_prompt(rng: np.random.Generator, region: Region, kind: str) -> Dict[str, np.ndarray]:
    """A box (jittered by up to 10 % of its side, as SAM) or 1-3 foreground points."""
    if kind == 'box':
        x0, y0, x1, y1 = region.bbox
        noise = rng.normal(0, 0.1, 4) * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
        return dict(box=np.array([x0, y0, x1, y1], np.float64) + np.clip(noise, -20, 20))
    ys, xs = np.nonzero(region.mask)
    count = 1 if kind == 'point' else int(rng.integers(2, 4))
    pick = rng.choice(len(xs), count, replace=len(xs) < count)
    return dict(points=np.stack([xs[pick] + 0.5, ys[pick] + 0.5], 1))


def _target(region: Region, size: int, low_res: int) -> torch.Tensor:
    """The region in the decoder's low-resolution frame: (low_res, low_res) pixel fractions."""
    mask = torch.from_numpy(region.mask.astype(np.float32))[None, None]
    h, w = region.mask.shape
    new_h, new_w, _ = SAMWrapper.preprocess_geometry(h, w, size)
    if (new_h, new_w) != (h, w):
        mask = F.interpolate(mask, (new_h, new_w), mode='nearest')
    mask = F.pad(mask, (0, size - new_w, 0, size - new_h))
    return F.adaptive_avg_pool2d(mask, low_res)[0, 0]


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = logits.sigmoid().flatten(1)
    target = target.flatten(1)
    return 1 - (2 * (prob * target).sum(1) + 1) / (prob.sum(1) + target.sum(1) + 1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    pred = (logits > 0).flatten(1).float()
    target = (target > 0.5).flatten(1).float()
    inter = (pred * target).sum(1)
    return inter / (pred.sum(1) + target.sum(1) - inter).clamp(min=1)


def prompted_masks(sam: Sam, embedding: torch.Tensor, prompts: List[Dict[str, np.ndarray]],
                   scale: float, multimask: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """Decode prompts of one kind on one image embedding (1, C, h, w).

    Returns:
        Low-resolution mask logits (N, M, S/4, S/4) of the padded input, IoU estimates
        (N, M); M is 3 with ``multimask`` and 1 otherwise.
    """
    device = embedding.device
    boxes = points = None
    if 'box' in prompts[0]:
        boxes = torch.tensor(
            np.stack([p['box'] for p in prompts]) * scale, dtype=torch.float32, device=device)
    else:
        width = max(len(p['points']) for p in prompts)
        coords = torch.zeros(len(prompts), width, 2, device=device)
        labels = -torch.ones(len(prompts), width, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            coords[i, :len(p['points'])] = torch.tensor(p['points'] * scale, dtype=torch.float32)
            labels[i, :len(p['points'])] = 1
        points = (coords, labels)
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
    low_res, iou = sam.mask_decoder(
        image_embeddings=embedding,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask)
    return low_res, iou


@dataclass(frozen=True)
class SAMRecipe:
    """How the toy SAM is pretrained; every field is part of the cache key.

    Attributes:
        num_scenes: Corpus scenes (foundation stream, seed ``seed``).
        steps: Optimiser steps.
        images_per_step: Images per step (one encoder batch).
        masks_per_image: Segments prompted per image.
        lr: Peak AdamW learning rate (linear warm-up over 5 % of the steps, cosine decay).
        bce_weight: Weight of the pixel BCE next to dice (SAM: focal 20 : dice 1).
        class_weight: Weight of region classification: each segment's mask-pooled image
            embedding is classified (19 trainIds) by a linear head that is dropped
            afterwards; 0 turns it off. The real SAM's ViT did not start from scratch (MAE
            on ImageNet, then SA-1B at a scale where its features separate categories); a
            tiny ViT trained from scratch on class-agnostic masks for a CPU budget does not
            get there (linear probe of its embeddings, 8 labeled toy images, toy val:
            10.4 mIoU against 9.7 for random weights; 33.8 with this term). Labeled
            pretraining on the disjoint corpus stands in for that head start.
        seed: Seed of the corpus, the initial weights and the sampling.
    """
    num_scenes: int = 600
    steps: int = 1500
    images_per_step: int = 2
    masks_per_image: int = 8
    lr: float = 3e-3
    bce_weight: float = 0.1
    class_weight: float = 1.0
    seed: int = 0


NUM_CLASSES = 19  # Cityscapes trainIds of the corpus's segments


def warmup_cosine(steps: int) -> Callable[[int], float]:
    """LambdaLR factor: linear warm-up over 5 % of ``steps``, then cosine decay to 0."""
    warmup = max(1, steps // 20)
    return lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))


def _region_logits(head: nn.Module, embedding: torch.Tensor, regions: List[Region],
                   size: int) -> torch.Tensor:
    """Mask-pool one image embedding (C, g, g) over each region -> (R, classes) logits."""
    grid = embedding.shape[-1]
    weights = torch.stack([_target(r, size, grid) for r in regions]).flatten(1)
    pooled = weights @ embedding.flatten(1).T / weights.sum(1, keepdim=True).clamp(min=1e-6)
    return head(pooled)


def _step_loss(sam: Sam, head: nn.Module, corpus: FoundationCorpus, picks: np.ndarray,
               rng: np.random.Generator,
               recipe: SAMRecipe) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Loss of one step and the IoUs of its box-prompted masks."""
    size = sam.image_encoder.img_size
    inputs = [sam_input(sam, corpus.scene(int(i))[0]) for i in picks]
    embeddings = sam.image_encoder(torch.stack([x for x, _ in inputs]))
    mask_losses, iou_mse, box_iou, class_ce = [], [], [], []
    for b, index in enumerate(picks):
        regions = corpus.regions(int(index))
        if recipe.class_weight > 0:
            labels = torch.tensor([r.class_id for r in regions])
            class_ce.append(
                F.cross_entropy(
                    _region_logits(head, embeddings[b], regions, size), labels, reduction='none'))
        chosen = [
            regions[int(j)] for j in rng.choice(
                len(regions), min(recipe.masks_per_image, len(regions)), replace=False)
        ]
        kind = ('box', 'point', 'points')[int(rng.choice(3, p=(0.5, 0.25, 0.25)))]
        prompts = [sample_prompt(rng, r, kind) for r in chosen]
        scale = inputs[b][1]
        logits, iou_pred = prompted_masks(
            sam, embeddings[b:b + 1], prompts, scale, multimask=kind == 'point')
        target = torch.stack([_target(r, size, logits.shape[-1]) for r in chosen])
        target = target[:, None].expand_as(logits)
        flat_logits, flat_target = logits.flatten(0, 1), target.flatten(0, 1)
        per_mask = (recipe.bce_weight * F.binary_cross_entropy_with_logits(
            flat_logits, flat_target, reduction='none').flatten(1).mean(1) +
                    dice_loss(flat_logits, flat_target)).view(logits.shape[:2])
        best = per_mask.argmin(1)  # of several outputs, only the best one learns
        rows = torch.arange(len(chosen))
        true_iou = mask_iou(logits[rows, best], target[rows, best]).detach()
        mask_losses.append(per_mask[rows, best])
        iou_mse.append(F.mse_loss(iou_pred[rows, best], true_iou, reduction='none'))
        if kind == 'box':
            box_iou.append(true_iou)
    loss = torch.cat(mask_losses).mean() + torch.cat(iou_mse).mean()
    if class_ce:
        loss = loss + recipe.class_weight * torch.cat(class_ce).mean()
    return loss, box_iou


def pretrain_sam(
        sam: Sam,
        corpus: FoundationCorpus,
        recipe: SAMRecipe,
        resume_file: Optional[str] = None,
        save_every: int = 100,
        progress: Optional[Callable[[int, int, Dict[str, float]],
                                    None]] = None) -> Dict[str, float]:
    """Train ``sam`` in place on promptable segmentation of the corpus's segments.

    Deterministic for a given recipe and thread count: the sampling has its own generator and
    SAM has no dropout. With ``resume_file``, the full state (weights, optimiser, scheduler,
    sampler) is written there every ``save_every`` steps and a run that finds it continues
    from it, giving the same weights as an uninterrupted run.

    Returns:
        The last step's loss and the mean IoU of its box-prompted masks.
    """
    rng = np.random.default_rng([recipe.seed, 101])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        head = nn.Linear(sam.prompt_encoder.embed_dim, NUM_CLASSES)
    optimizer = torch.optim.AdamW([*sam.parameters(), *head.parameters()],
                                  lr=recipe.lr,
                                  weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(recipe.steps))
    start = 0
    state = read_resume_state(resume_file)
    if state is not None:
        sam.load_state_dict(state['model'])
        head.load_state_dict(state['head'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        rng.bit_generator.state = state['sampler']
        start = int(state['step'])
    sam.train()
    stats: Dict[str, float] = {}
    for step in range(start, recipe.steps):
        picks = rng.choice(len(corpus), recipe.images_per_step, replace=False)
        loss, box_iou = _step_loss(sam, head, corpus, picks, rng, recipe)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        stats = dict(
            loss=float(loss.detach()),
            box_iou=float(torch.cat(box_iou).mean()) if box_iou else stats.get('box_iou', 0.0))
        done = step + 1
        if resume_file is not None and (done % save_every == 0) and done < recipe.steps:
            write_resume_state(
                resume_file,
                dict(
                    model=sam.state_dict(),
                    head=head.state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    sampler=rng.bit_generator.state,
                    step=done))
        if progress is not None:
            progress(done, recipe.steps, stats)
    sam.eval()
    return stats


@torch.no_grad()
def evaluate_box_prompts(sam: Sam, corpus: FoundationCorpus, indices: List[int]) -> float:
    """Mean IoU of masks from exact-box prompts (single output) on the given scenes."""
    sam.eval()
    size = sam.image_encoder.img_size
    ious = []
    for index in indices:
        image, _, _ = corpus.scene(index)
        x, scale = sam_input(sam, image)
        embedding = sam.image_encoder(x[None])
        regions = corpus.regions(index)
        prompts = [dict(box=np.array(r.bbox, np.float64)) for r in regions]
        logits, _ = prompted_masks(sam, embedding, prompts, scale, multimask=False)
        target = torch.stack([_target(r, size, logits.shape[-1]) for r in regions])
        ious.append(mask_iou(logits[:, 0], target))
    return float(torch.cat(ious).mean())
