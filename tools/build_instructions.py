"""Build the instruction set (JSONL) of a split from its semantic label maps.

    python tools/build_instructions.py DATA_ROOT --ann-file splits/1_30/labeled.txt \
        [--split train] [--dataset cityscapes] [--out FILE] [--seed 0] [--offline]

Semantic instructions always use the built-in templates. Attribute and conditional ones are
worded by GPT-4o when OPENAI_API_KEY is set (cached under --llm-cache, resumable, cost
printed) and by the built-in engine with --offline or without a key. An existing output is
kept unless --force: val/test sets are generated once, with a fixed seed, so that numbers stay
comparable.
"""
import argparse
import os
import os.path as osp
import sys

from mmcora.instructions import build_instruction_set, default_output


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Build an instruction set for a split')
    parser.add_argument('data_root', help='data set root (holds the split lists)')
    parser.add_argument('--ann-file', required=True, help='split list relative to data_root')
    parser.add_argument('--split', default='train', help='image/label sub-directory: train, val')
    parser.add_argument('--dataset', default='cityscapes', help='directory layout and classes')
    parser.add_argument('--out', help='output JSONL (default <root>/instructions/<list>.jsonl)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--conditional-per-image', type=int, default=4)
    parser.add_argument('--offline', action='store_true', help='never call the LLM')
    parser.add_argument('--force', action='store_true', help='overwrite an existing output')
    parser.add_argument('--model', default='gpt-4o')
    parser.add_argument('--base-url', help='OpenAI-compatible endpoint (default: OpenAI)')
    parser.add_argument(
        '--llm-cache',
        default=osp.expanduser('~/.cache/mmcora/llm'),
        help='answers cached by content hash; reruns never pay twice')
    parser.add_argument('--max-concurrency', type=int, default=4)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = args.out or default_output(args.data_root, args.ann_file)
    if osp.exists(out) and not args.force:
        print(f'{out} exists; kept (use --force to rebuild it)')
        return
    from mmcora.instructions.llm_writer import LLMInstructionWriter, LLMWriterError
    writer = None
    if not args.offline and os.environ.get('OPENAI_API_KEY'):
        writer = LLMInstructionWriter(
            model=args.model,
            base_url=args.base_url,
            cache_dir=args.llm_cache,
            max_concurrency=args.max_concurrency)
    try:
        summary = build_instruction_set(
            args.data_root,
            args.dataset,
            args.split,
            args.ann_file,
            out=out,
            seed=args.seed,
            writer=writer,
            conditional_per_image=args.conditional_per_image)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    except LLMWriterError as error:
        sys.exit(f'error: {error}\nFinished items are cached in {args.llm_cache}; run the '
                 'same command again to continue without paying for them twice.')
    print(f'{summary["images"]} images -> {out}: {summary["queries"]} '
          f'({summary["seconds"]}s; writer: {"gpt-4o" if writer else "built-in"})')
    if writer is not None:
        print(writer.summary())


if __name__ == '__main__':
    main()
