"""Generate the toy city (synthetic Cityscapes-layout street scenes) at a data root.

    python tools/dataset_converters/toy_city.py [data/toy_city] [--num-train 240] ...

Training configs with ``ToyCityscapesDataset`` do this on first use; this tool is for
generating it up front or with other parameters.
"""
import argparse

from mmcora.datasets import ToyCitySpec, ensure_toy_city


def main() -> None:
    defaults = ToyCitySpec()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', nargs='?', default='data/toy_city', help='output directory')
    parser.add_argument('--num-train', type=int, default=defaults.num_train)
    parser.add_argument('--num-val', type=int, default=defaults.num_val)
    parser.add_argument('--height', type=int, default=defaults.height)
    parser.add_argument('--width', type=int, default=defaults.width)
    parser.add_argument('--seed', type=int, default=defaults.seed)
    args = parser.parse_args()
    spec = ToyCitySpec(
        num_train=args.num_train,
        num_val=args.num_val,
        height=args.height,
        width=args.width,
        seed=args.seed)
    try:
        ensure_toy_city(args.root, spec)
    except FileExistsError as error:
        raise SystemExit(f'error: {error}')
    print(f'toy city ready at {args.root}')


if __name__ == '__main__':
    main()
