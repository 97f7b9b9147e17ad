"""What do extra queries on an image cost a training step, packed and as separate sequences?

    python bench/packed_prefix.py [--repeats 7] [--queries 3] [--hidden 64] [--layers 2]

One run, medians over repeats, of the language-model part of a CORA training step (forward of
the prompts with answers, answer cross-entropy, backward into LoRA and the token rows) on one
image at LLaVA-1.5's token geometry: 336 px, patch 14, 576 image tokens, the LLaMA-style
SentencePiece tokenizer, the real prompt template (a prefix of about 600 tokens), tiny widths
(``--hidden``, ``--layers``):
  one       - one query
  packed    - ``--queries`` queries in one packed sequence, the prefix once (the default)
  separate  - the same queries, each its own full sequence (the prefix once per query)
Prints packed/one (target <= 1.4 for 3 queries) and separate/one. The image features are
computed once, outside the timing (both paths share them).
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmcora.models.mllm import LlavaMLLM, write_tiny_llava  # noqa: E402

QUERIES = [('Can you segment the car to the left of the bus?', 'Sure, it is [SEG].'),
           ('Please segment the sky in this image.', 'It is [SEG].'),
           ('Where is the rider closest to the camera?', 'The rider is [SEG].'),
           ('Segment the road that the cars drive on.', 'Sure, [SEG].')]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--queries', type=int, default=3)
    parser.add_argument('--hidden', type=int, default=64)
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--gradient-checkpointing', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = osp.join(tempfile.mkdtemp(prefix='bench-packed-'), 'llava')
    write_tiny_llava(
        path,
        tokenizer='llama',
        image_size=336,
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        num_layers=args.layers)
    torch.manual_seed(0)
    mllm = LlavaMLLM(
        path,
        lora=dict(r=8, alpha=16, dropout=0.0),
        gradient_checkpointing=args.gradient_checkpointing).train()
    features = mllm.image_features(torch.randn(1, 3, 336, 336))
    queries = (QUERIES * args.queries)[:args.queries]
    batches = {
        'one': mllm.tokenize([queries[0][0]], [queries[0][1]], 'cpu'),
        'many': mllm.tokenize([q for q, _ in queries], [a for _, a in queries], 'cpu')
    }

    def step(name: str, packed: bool) -> None:
        tokens = batches[name]
        index = torch.zeros(len(tokens.ids), dtype=torch.long)
        ce, states, _ = mllm.forward_full(features, index, tokens, packed=packed)
        (ce + states.sum() * 1e-3).backward()
        mllm.zero_grad(set_to_none=True)

    variants = dict(one=('one', True), packed=('many', True), separate=('many', False))
    times = {name: [] for name in variants}
    for _ in range(2):  # interleaved rounds, so drifts in machine load hit every variant
        for name, (batch, packed) in variants.items():
            step(batch, packed)  # warm-up
            for _ in range(args.repeats):
                start = time.perf_counter()
                step(batch, packed)
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    lengths = batches['many'].mask.sum(1).tolist()
    print(f'LLaVA-1.5 geometry: {mllm.num_image_tokens} image tokens, prefix '
          f'{len(mllm.prefix_ids("cpu"))} tokens, suffixes {lengths}; hidden {args.hidden}, '
          f'{args.layers} layers, gradient checkpointing {args.gradient_checkpointing}; '
          f'{2 * args.repeats} timed steps per variant')
    for name in variants:
        print(f'{name:9s} {med[name]:8.1f} ms')
    print(f'packed/one {med["packed"] / med["one"]:.2f} (target <= 1.4 for 3 queries)   '
          f'separate/one {med["separate"] / med["one"]:.2f}   '
          f'separate/packed {med["separate"] / med["packed"]:.2f}')


if __name__ == '__main__':
    main()
