"""What does output-consistency weighting (K-1 rephrasings per unlabeled image) add to a step?

    python bench/stage3_step.py [--config CONFIG] [--repeats 7] [--k 7] [--clip-size 56]

Three timings in one run, medians over repeats, of one stage-3 training step (data
preprocessing, loss, backward) on the same batch of 2 labeled + 2 pseudo-labeled images of the
toy city (pseudo-labels: the ground truth, written to a temporary directory):
  plain     - pseudo-masks without consistency weights (VarianceWeightedLoss mapping 'none')
  weighted  - CORA's weights: the K-1 rephrasings as one no-grad batch through the frozen
              snapshot, on the images' shared SAM/CLIP encodings and language-model prefix
  naive     - the same weights, each rephrasing its own pass that re-encodes the image
Prints weighted/plain (target <= 1.5) and naive/plain. The model is the config's, with random
tiny weights (no foundation cache needed); ``--clip-size 336`` gives the tiny LLaVA the real
LLaVA-1.5 geometry (336 px, 576 image tokens), where the shared prefix matters most.
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmseg.registry import DATASETS, MODELS  # noqa: E402

import mmcora  # noqa: E402,F401
from mmcora.datasets import read_name_list  # noqa: E402
from tests.test_datasets.test_semi_reasoning import write_pseudo  # noqa: E402


def naive_probs(model, sam_embeddings, image_features, samples, inputs):
    """Each rephrasing alone, re-encoding its image (what the shared batch avoids)."""
    out = []
    with model.consistency_snapshot.swapped_in(model):
        for b, sample in enumerate(samples):
            maps = []
            for query in sample.consistency_queries:
                sam, clip = model.extract_feat({k: v[b:b + 1] for k, v in inputs.items()})
                tokens = model.mllm.tokenize([query['text']], [query['answer']], sam.device)
                index = torch.zeros(1, dtype=torch.long, device=sam.device)
                _, states, _ = model.mllm.forward_full(clip, index, tokens)
                maps.append(
                    model.decode_masks(sam, model.projector(states.float()), index,
                                       [sample])[0].sigmoid())
            out.append(torch.cat(maps))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/cora/cora-semi_tiny_3x600_toy-city-1-30.py')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--k', type=int, default=7, help='queries per unlabeled image (K)')
    parser.add_argument('--clip-size', type=int, default=56)
    args = parser.parse_args()
    torch.set_num_threads(1)
    init_default_scope('mmseg')
    cfg = Config.fromfile(args.config)
    tmp = tempfile.mkdtemp(prefix='bench-stage3-')
    cfg.model.mllm.update(pretrained=osp.join(tmp, 'tiny-llava'), toy_pretrain=None)
    if args.clip_size != 56:
        cfg.model.mllm.tiny = dict(image_size=args.clip_size, patch_size=14)
    cfg.model.sam.toy_pretrain = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    model.enter_stage('unlabeled')

    labeled_cfg, unlabeled_cfg = cfg.unlabeled_dataloader.dataset.datasets
    root = labeled_cfg.data_root
    names = read_name_list(osp.join(root, unlabeled_cfg.ann_file))[:2]
    write_pseudo(root, osp.join(tmp, 'pseudo'), names)
    list_file = osp.join(tmp, 'unlabeled.txt')
    open(list_file, 'w').write('\n'.join(names))
    unlabeled_cfg.update(ann_file=list_file, pseudo_dir=osp.join(tmp, 'pseudo'), num_queries=args.k)
    for d in (labeled_cfg, unlabeled_cfg):
        for t in d.pipeline:
            if t['type'] == 'CLIPInputs':
                t['size'] = args.clip_size
            if t['type'] == 'SamplePseudoQueries':
                t['num_queries'] = args.k
    np.random.seed(0)
    labeled, unlabeled = DATASETS.build(labeled_cfg), DATASETS.build(unlabeled_cfg)
    batch = pseudo_collate([labeled[0], labeled[1], unlabeled[0], unlabeled[1]])

    def step():
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        model.zero_grad(set_to_none=True)

    original = model.consistency_probs
    variants = {}
    for name in ('plain', 'weighted', 'naive', 'plain', 'weighted', 'naive'):
        model.loss_pseudo.mapping = 'none' if name == 'plain' else 'stability'
        if name == 'naive':
            model.consistency_probs = lambda s, c, samples: naive_probs(
                model, s, c, samples,
                model.data_preprocessor(batch, True)['inputs'])
        else:
            model.consistency_probs = original
        step()  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        variants.setdefault(name, []).extend(times)
    med = {k: statistics.median(v) * 1000 for k, v in variants.items()}
    print(f'config {args.config}, K={args.k}, CLIP {args.clip_size} px, '
          f'2 labeled + 2 pseudo-labeled images, {2 * args.repeats} timed steps per variant')
    for name in ('plain', 'weighted', 'naive'):
        print(f'{name:9s} {med[name]:8.1f} ms')
    print(f'weighted/plain {med["weighted"] / med["plain"]:.2f} (target <= 1.5)   '
          f'naive/plain {med["naive"] / med["plain"]:.2f}')


if __name__ == '__main__':
    main()
