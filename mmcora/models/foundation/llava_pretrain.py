"""Pretraining of the tiny LLaVA, a miniature of how CLIP and LLaVA-1.5 were made.

Four stages on the foundation corpus (:mod:`.corpus`), each a stand-in for one the real
model went through:

1. **clip**: the vision tower learns what it sees. The real CLIP contrasted images with their
   web captions; the tiny tower classifies, instead, (a) the masked crop of every segment
   (SegLLM's anchor crop, :func:`~mmcora.datasets.transforms.reasoning.masked_crop`) from its
   pooled CLS output, which is what the anchor encoder reads, and (b) the class mix under
   each patch from the layer LLaVA takes its image tokens from (``vision_feature_layer``).
   Both linear heads are dropped afterwards.
2. **language** (LLaMA's pretraining): the language model alone learns the captions and the
   answers as text, without the image.
3. **align** (LLaVA's stage 1, LCS-558K): CLIP and the language model frozen, only the
   projector learns, on captions (:mod:`.scene_text`); what the text already predicts, it
   cannot improve, so it must carry what the image adds.
4. **tune** (LLaVA's stage 2, LLaVA-Instruct): the projector and the whole language model
   learn on captions and questions about the image.

Images go through exactly the CORA pipeline's CLIP preprocessing (padded square, cubic
resize, the image processor's mean and std), and prompts through the chat template of
:class:`~mmcora.models.mllm.LlavaMLLM`. The Hugging Face model computes its own loss
(``labels``), as when LLaVA is fine-tuned with ``transformers``.
"""
import os
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...datasets.toy_city_canvas import VOID
from ...datasets.transforms.reasoning import OPENAI_CLIP_MEAN_255, masked_crop, square_resize
from ..mllm.prompt import IGNORE, chat_prefix_ids, encode_turn
from .corpus import FoundationCorpus
from .resume import read_resume_state, write_resume_state
from .sam_pretrain import warmup_cosine
from .scene_text import scene_questions

# the CLIP resizing the toy LLaVA is pretrained with, and the toy configs' CLIPInputs use
TOY_RESIZE = 'cv2'

NUM_CLASSES = 19  # Cityscapes trainIds


@dataclass(frozen=True)
class LLaVARecipe:
    """How the tiny LLaVA is pretrained; every field is part of the cache key.

    Attributes:
        num_scenes: Corpus scenes (foundation stream, seed ``seed``).
        clip_steps: Steps of the CLIP stage.
        clip_images: Whole images per CLIP step (patch class-mix targets).
        clip_crops: Segment crops per CLIP step (crop classification).
        clip_lr: Peak AdamW learning rate of the CLIP stage.
        language_steps: Steps of text-only language modelling of the captions and answers
            (the tiny LLM's stand-in for LLaMA's pretraining: it learns the language and the
            answers' priors, so that alignment can only lower the loss through the image).
        align_steps: Steps of projector alignment on captions.
        tune_steps: Steps of instruction tuning (projector + language model).
        texts_per_step: (image, question, answer) triples per language step.
        lm_lr: Peak learning rate of the language stages.
        seed: Seed of the corpus, the heads and the sampling (the model's initial weights
            are the tiny LLaVA's own, seeded by its spec).

    The language and alignment stages are off by default: measured on 40 held-out scenes,
    neither made the answers depend on the image (exact answers 0.495 with the image and
    0.500 with a blank one with both stages, 0.500 / 0.490 without): at 56 px the toy image
    is a 56 x 28 thumbnail behind 8 of the 16 image tokens, and the 64-wide LLM answers from
    the questions' priors. What the default recipe gives CORA is the CLIP stage (held-out
    crop accuracy 0.635 over 14 classes, read by the anchor encoder) and a language model
    that already speaks the prompt format.
    """
    num_scenes: int = 600
    clip_steps: int = 1500
    clip_images: int = 8
    clip_crops: int = 16
    clip_lr: float = 2e-3
    language_steps: int = 0
    align_steps: int = 0
    tune_steps: int = 2000
    texts_per_step: int = 16
    lm_lr: float = 1e-3
    seed: int = 0


def clip_pixels(image: np.ndarray, size: int, mean: Sequence[float],
                std: Sequence[float]) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, size, size) as ``CLIPInputs`` + the data preprocessor."""
    return normalise_clip(square_resize(image, size, OPENAI_CLIP_MEAN_255, TOY_RESIZE), mean, std)


def normalise_clip(square: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (3, S, S) with CLIP's statistics ([0, 1] RGB)."""
    x = torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1).float() / 255
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def patch_class_mix(train_ids: np.ndarray, grid: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Class fractions under each patch of the padded square image.

    Returns:
        (grid * grid, 19) class distribution of each patch's labeled pixels and
        (grid * grid,) labeled fraction of the patch (0 on the padding).
    """
    h, w = train_ids.shape
    side = max(h, w)
    square = np.full((side, side), VOID, np.int64)
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = train_ids
    square = torch.from_numpy(square)
    onehot = F.one_hot(square.clamp(max=NUM_CLASSES), NUM_CLASSES + 1)[..., :NUM_CLASSES]
    fractions = F.adaptive_avg_pool2d(onehot.permute(2, 0, 1).float()[None], grid)[0]
    fractions = fractions.flatten(1).T  # (grid*grid, classes)
    labeled = fractions.sum(1)
    return fractions / labeled.clamp(min=1e-6).unsqueeze(1), labeled


class LLaVAPretrainer:
    """Runs the four stages on one ``LlavaForConditionalGeneration`` in place.

    Args:
        model (nn.Module): The Hugging Face LLaVA (tiny, float32).
        tokenizer (PreTrainedTokenizerBase): Its tokenizer.
        image_mean, image_std (Sequence[float]): The image processor's statistics.
        corpus (FoundationCorpus): Rendered foundation scenes.
        recipe (LLaVARecipe): The recipe.
        system_prompt (str): Text before ``USER:`` (:class:`~mmcora.models.mllm.LlavaMLLM`'s).
    """

    def __init__(self, model: nn.Module, tokenizer, image_mean: Sequence[float],
                 image_std: Sequence[float], corpus: FoundationCorpus, recipe: LLaVARecipe,
                 system_prompt: str) -> None:
        self.model, self.tokenizer, self.corpus, self.recipe = model, tokenizer, corpus, recipe
        vision = model.config.vision_config
        self.size, self.grid = vision.image_size, vision.image_size // vision.patch_size
        self.mean, self.std = list(image_mean), list(image_std)
        # per scene, once: the CLIP input and the patch class-mix targets
        self.pixels = [
            clip_pixels(corpus.scene(i)[0], self.size, self.mean, self.std)
            for i in range(len(corpus))
        ]
        self.mixes = [patch_class_mix(corpus.scene(i)[1], self.grid) for i in range(len(corpus))]
        self.prefix = chat_prefix_ids(tokenizer, system_prompt, model.config.image_token_id,
                                      self.grid**2)
        self.text_prefix = chat_prefix_ids(tokenizer, system_prompt, -1, 0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            self.heads = nn.ModuleDict(
                dict(
                    crop=nn.Linear(vision.hidden_size, NUM_CLASSES),
                    patch=nn.Linear(vision.hidden_size, NUM_CLASSES)))

    # ------------------------------------------------------------------ stage losses
    def vision_outputs(self, pixels: torch.Tensor):
        return self.model.model.vision_tower(pixel_values=pixels, output_hidden_states=True)

    def clip_loss(self, rng: np.random.Generator) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Patch class-mix cross-entropy + segment crop classification."""
        picks = rng.choice(len(self.corpus), self.recipe.clip_images, replace=False)
        out = self.vision_outputs(torch.stack([self.pixels[int(i)] for i in picks]))
        layer = self.model.config.vision_feature_layer
        patches = out.hidden_states[layer][:, 1:].flatten(0, 1)  # 'default': CLS dropped
        mixes = [self.mixes[int(i)] for i in picks]
        target = torch.cat([m for m, _ in mixes])
        weight = torch.cat([w for _, w in mixes])
        log_prob = self.heads['patch'](patches).log_softmax(-1)
        patch_ce = -(target * log_prob).sum(1).mul(weight).sum() / weight.sum().clamp(min=1)
        crops, labels = self.sample_crops(rng, self.recipe.clip_crops)
        logits = self.heads['crop'](self.vision_outputs(crops).pooler_output)
        crop_ce = F.cross_entropy(logits, labels)
        accuracy = float((logits.argmax(1) == labels).float().mean())
        return patch_ce + crop_ce, dict(patch_ce=float(patch_ce.detach()), crop_acc=accuracy)

    def sample_crops(
            self,
            rng: np.random.Generator,
            num: int,
            corpus: Optional[FoundationCorpus] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        corpus = corpus or self.corpus
        crops, labels = [], []
        while len(crops) < num:
            index = int(rng.integers(len(corpus)))
            regions = corpus.regions(index)
            region = regions[int(rng.integers(len(regions)))]
            crop, _ = masked_crop(corpus.scene(index)[0], region.mask, self.size, TOY_RESIZE)
            crops.append(normalise_clip(crop, self.mean, self.std))
            labels.append(region.class_id)
        return torch.stack(crops), torch.tensor(labels)

    def text_batch(self,
                   rng: np.random.Generator,
                   captions_only: bool,
                   corpus: Optional[FoundationCorpus] = None,
                   pixels: Optional[List[torch.Tensor]] = None,
                   image: bool = True) -> dict:
        """``texts_per_step`` prompts with their answers as HF ``input_ids``/``labels``;
        without ``image``, text alone (no image tokens, no ``pixel_values``)."""
        corpus, pixels = corpus or self.corpus, pixels or self.pixels
        rows, images = [], []
        for _ in range(self.recipe.texts_per_step):
            index = int(rng.integers(len(corpus)))
            _, train_ids, _ = corpus.scene(index)
            question, answer = scene_questions(
                rng, train_ids, corpus.regions(index), 1, captions_only=captions_only)[0]
            rows.append(self.encode(question, answer, image))
            images.append(pixels[index])
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (ids, label) in enumerate(rows):
            input_ids[i, :len(ids)], labels[i, :len(ids)] = torch.tensor(ids), torch.tensor(label)
            mask[i, :len(ids)] = 1
        batch = dict(input_ids=input_ids, labels=labels, attention_mask=mask)
        return dict(batch, pixel_values=torch.stack(images)) if image else batch

    def encode(self, question: str, answer: str, image: bool = True) -> Tuple[List[int], List[int]]:
        """Ids and labels of ``prefix <question> ASSISTANT: <answer></s>`` (LlavaMLLM's), the
        prefix without its image tokens unless ``image``."""
        ids, labels = encode_turn(self.tokenizer, question, answer)
        prefix = self.prefix if image else self.text_prefix
        return prefix + ids, [IGNORE] * len(prefix) + labels

    def text_loss(self,
                  rng: np.random.Generator,
                  captions_only: bool,
                  image: bool = True) -> Tuple[torch.Tensor, Dict[str, float]]:
        loss = self.model(**self.text_batch(rng, captions_only, image=image)).loss
        return loss, dict(answer_ce=float(loss.detach()))

    # ------------------------------------------------------------------ the run
    def stages(self) -> List[Tuple[str, int, List[nn.Parameter], float, Callable]]:
        inner = self.model.model
        language = [*inner.language_model.parameters(), *self.model.lm_head.parameters()]
        projector = list(inner.multi_modal_projector.parameters())
        r = self.recipe
        return [
            ('clip', r.clip_steps, [*inner.vision_tower.parameters(),
                                    *self.heads.parameters()], r.clip_lr, self.clip_loss),
            ('language', r.language_steps, language, r.lm_lr,
             lambda rng: self.text_loss(rng, captions_only=False, image=False)),
            ('align', r.align_steps, projector, r.lm_lr,
             lambda rng: self.text_loss(rng, captions_only=True)),
            ('tune', r.tune_steps, projector + language, r.lm_lr,
             lambda rng: self.text_loss(rng, captions_only=False)),
        ]

    def run(self,
            resume_file: Optional[str] = None,
            save_every: int = 200,
            progress: Optional[Callable] = None) -> Dict[str, Dict[str, float]]:
        """Train every stage; resumable from ``resume_file`` (any stage, any step).

        Returns:
            Per stage, its last step's statistics.
        """
        state = read_resume_state(resume_file)
        done_stages = state['stage_index'] if state else 0
        if state:
            self.model.load_state_dict(state['model'])
            self.heads.load_state_dict(state['heads'])
        last: Dict[str, Dict[str, float]] = dict(state['stats']) if state else {}
        for stage_index, (name, steps, params, lr, loss_fn) in enumerate(self.stages()):
            if stage_index < done_stages or steps == 0:  # done before, or turned off
                continue
            self.model.requires_grad_(False)
            for param in params:
                param.requires_grad_(True)
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps))
            rng = np.random.default_rng([self.recipe.seed, 202, zlib.crc32(name.encode())])
            start = 0
            if state and state['stage_index'] == stage_index and state['step'] > 0:
                optimizer.load_state_dict(state['optimizer'])
                scheduler.load_state_dict(state['scheduler'])
                rng.bit_generator.state = state['sampler']
                start = int(state['step'])
            self.model.train()
            self.model.model.vision_tower.train(name == 'clip')
            for step in range(start, steps):
                loss, stats = loss_fn(rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                last[name] = stats
                done = step + 1
                if resume_file and done % save_every == 0 and done < steps:
                    write_resume_state(
                        resume_file,
                        dict(
                            stage_index=stage_index,
                            step=done,
                            model=self.model.state_dict(),
                            heads=self.heads.state_dict(),
                            optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict(),
                            sampler=rng.bit_generator.state,
                            stats=last))
                if progress is not None:
                    progress(done, steps, stats, name)
            if resume_file and stage_index + 1 < len(self.stages()):
                # the next stage starts here if the run stops between stages
                write_resume_state(
                    resume_file,
                    dict(
                        stage_index=stage_index + 1,
                        step=0,
                        model=self.model.state_dict(),
                        heads=self.heads.state_dict(),
                        optimizer=None,
                        scheduler=None,
                        sampler=None,
                        stats=last))
        self.model.requires_grad_(False)
        self.model.eval()
        if resume_file and os.path.isfile(resume_file):
            os.remove(resume_file)
        return last

    # ------------------------------------------------------------------ measuring
    @torch.no_grad()
    def evaluate(self, held_out: FoundationCorpus, num: int = 400) -> Dict[str, float]:
        """Held-out crop accuracy, and exact answers (teacher-forced argmax of every answer
        token, i.e. what greedy decoding would say) with the image and with a blank one."""
        self.model.eval()
        rng = np.random.default_rng([self.recipe.seed, 303])
        crops, labels = self.sample_crops(rng, num, held_out)
        logits = self.heads['crop'](self.vision_outputs(crops).pooler_output)
        result = dict(crop_acc=float((logits.argmax(1) == labels).float().mean()))
        pixels = [
            clip_pixels(held_out.scene(i)[0], self.size, self.mean, self.std)
            for i in range(len(held_out))
        ]
        blank = clip_pixels(
            np.full((8, 8, 3), OPENAI_CLIP_MEAN_255, np.uint8), self.size, self.mean, self.std)
        for key, images in (('qa_exact', pixels), ('qa_exact_blank', [blank] * len(pixels))):
            rng = np.random.default_rng([self.recipe.seed, 304])
            right = total = 0
            for _ in range(max(1, num // self.recipe.texts_per_step)):
                batch = self.text_batch(rng, False, held_out, images)
                logits = self.model(**{k: v for k, v in batch.items() if k != 'labels'}).logits
                targets = batch['labels'][:, 1:]
                predicted = logits[:, :-1].argmax(-1)
                wrong = ((predicted != targets) & (targets != IGNORE)).any(1)
                right += int((~wrong).sum())
                total += len(wrong)
            result[key] = right / total
        return result
