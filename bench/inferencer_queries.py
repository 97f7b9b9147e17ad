"""How much do extra queries on one image cost through ReasoningSegInferencer?

    python bench/inferencer_queries.py [--config CONFIG] [--checkpoint CKPT] [--device cpu]
                                       [--queries 8] [--repeats 7] [--mode teacher_forcing]

Three timings in one run, medians over repeats, each on an image not yet encoded:
  one    - 1 query
  many   - N queries in one call (image encoded once, image prefix run once, queries batched)
  naive  - N calls of 1 query with the encodings dropped before each (LISA re-encodes per query)
Prints the ratios many/one (target < 2) and naive/one (about N).
"""
import argparse
import statistics
import time

import numpy as np
import torch

from mmcora.apis import ReasoningSegInferencer

QUERIES = [
    'Segment the car.', 'Can you segment the sky?', 'Please segment the road.',
    'Where is the building in this image? Please answer with a segmentation mask.',
    'Segment the person to the left of the car <anchor>.', 'Show me the bus.',
    'Highlight the trees, bushes and hedges with a mask.', 'Segment the sidewalk.',
    'Mark all pixels of the traffic sign in this image.', 'Segment the bicycle.'
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/cora/toy-city_1-30_tiny.py')
    parser.add_argument('--checkpoint')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--queries', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument(
        '--mode', default='teacher_forcing', choices=['teacher_forcing', 'generate'])
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=256)
    args = parser.parse_args()

    inferencer = ReasoningSegInferencer(
        args.config, args.checkpoint, device=args.device, mode=args.mode)
    rng = np.random.default_rng(0)
    queries = [QUERIES[i % len(QUERIES)] for i in range(args.queries)]
    anchor = np.zeros((args.height, args.width), bool)
    anchor[args.height // 2:, :args.width // 4] = True
    anchors = [anchor if '<anchor>' in q else None for q in queries]

    def fresh_image() -> np.ndarray:
        return rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)

    def timed(fn) -> float:
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def naive(image):
        for q, a in zip(queries, anchors):
            inferencer.reset_image()  # drop the encodings: re-encode per query
            inferencer(image, [q], anchors=[a], draw=False)

    runs = {
        'one': lambda image: inferencer(image, queries[:1], anchors=anchors[:1], draw=False),
        'many': lambda image: inferencer(image, queries, anchors=anchors, draw=False),
        'naive': naive
    }
    for run in runs.values():  # warm-up
        run(fresh_image())
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            image = fresh_image()
            times[name].append(timed(lambda: run(image)))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f'config={args.config} device={args.device} mode={args.mode} '
          f'image={args.height}x{args.width} queries={args.queries} repeats={args.repeats}')
    for name in runs:
        print(f'{name:>6}: {median[name] * 1000:8.1f} ms (median)')
    print(f'many/one  = {median["many"] / median["one"]:.2f}  (target < 2)')
    print(f'naive/one = {median["naive"] / median["one"]:.2f}')


if __name__ == '__main__':
    main()
