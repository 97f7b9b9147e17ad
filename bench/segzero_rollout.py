"""What does a GRPO group of G replies cost over one reply, on one Seg-Zero prompt?

    python bench/segzero_rollout.py [--group 8] [--new-tokens 64] [--repeats 5]
                                    [--reasoner DIR] [--device cpu] [--dtype float32]

At the real token counts: the 840 x 840 canvas gives 900 image tokens (Qwen2.5-VL's 14 px
patches merged 2 x 2) plus Seg-Zero's prompt; the tiny reasoner keeps that geometry at test
widths (``--reasoner`` takes a real Hugging Face directory instead). Timings in one run,
medians over repeats, every reply run to the budget (the end token is held back so that all
variants decode the same number of tokens):

  one        - G = 1: prefill + T decoding steps
  group      - G replies from one prefill (the key/value cache repeated G times), as GRPO's
               rollout runs
  naive      - G independent G = 1 rollouts (the image encoded and the prompt prefilled G times)
  logp       - the group's completion log-probabilities from one shared prefill (the policy
               and reference passes of a GRPO step)
  logp_naive - the same over G full sequences

Prints group/one (target well below G) and naive/one (about G).
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reasoner', help='a Qwen2.5-VL directory (default: the tiny one)')
    parser.add_argument('--group', type=int, default=8)
    parser.add_argument('--new-tokens', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='float32')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mmcora.models.segzero import QwenReasoner
    path, tiny = args.reasoner, None
    if path is None:
        path = os.path.join(tempfile.gettempdir(), 'mmcora-bench', 'tiny-qwen2.5-vl-hf')
        tiny = dict()
    reasoner = QwenReasoner(
        path, tiny=tiny, dtype=args.dtype, reference=False, max_new_tokens=args.new_tokens)
    reasoner.to(args.device).eval()
    reasoner.suppressed = reasoner.suppressed + [reasoner.eos_id]
    canvas = np.random.default_rng(0).integers(0, 255, (840, 840, 3), dtype=np.uint8)
    prompt = reasoner.build_prompt(canvas, 'Segment the car left of the bus.')
    image_tokens = int((prompt['input_ids'] == reasoner.model.config.image_token_id).sum())
    g, t = args.group, args.new_tokens
    generator = torch.Generator(device=args.device).manual_seed(0)

    with torch.no_grad():

        def one():
            return reasoner.sample(prompt, 1, t, generator=generator)

        def group():
            return reasoner.sample(prompt, g, t, generator=generator)

        def naive():
            return [reasoner.sample(prompt, 1, t, generator=generator) for _ in range(g)]

        ids = group().ids
        assert ids.shape == (g, t), ids.shape

        def logp():
            return reasoner.completion_logprobs(prompt, ids, share_prefix=True)

        def logp_naive():
            return reasoner.completion_logprobs(prompt, ids, share_prefix=False)

        one()  # warm-up
        timings = {
            name: median_time(fn, args.repeats)
            for name, fn in dict(
                one=one, group=group, naive=naive, logp=logp, logp_naive=logp_naive).items()
        }
    print(f'reasoner {path} ({args.device}, {args.dtype}), prompt {prompt["input_ids"].shape[1]}'
          f' tokens ({image_tokens} image tokens), G = {g}, {t} new tokens, '
          f'median of {args.repeats}')
    for name, seconds in timings.items():
        print(f'  {name:<11} {seconds * 1000:9.1f} ms')
    print(f'group/one {timings["group"] / timings["one"]:.2f}  '
          f'naive/one {timings["naive"] / timings["one"]:.2f}  '
          f'logp_naive/logp {timings["logp_naive"] / timings["logp"]:.2f}')


if __name__ == '__main__':
    main()
