"""How much class information a frozen SAM image encoder carries: a linear probe.

    python tools/analysis/sam_linear_probe.py CONFIG [--random] [--data-root data/toy_city] \
        [--train-list splits/1_30/labeled.txt] [--val-list splits/val.txt] \
        [--cfg-options model.sam.toy_pretrain.class_weight=0]

Builds the ``model.sam`` of CONFIG (with ``--random`` its ``toy_pretrain`` is dropped, so
the same architecture keeps its random initial weights), encodes the training and val images
of a Cityscapes-layout data root once, labels every embedding token with the majority
trainId of the pixels it covers, fits a linear classifier on the training tokens (Adam, full
batch, fixed seed) and reports per-token accuracy and mIoU on the val tokens. Everything a
CORA mask decoder learns about "what is a car" has to come from these features (SAM's
encoder is frozen), so a probe near the random encoder's says the frozen part is the limit.
"""
import argparse
import os.path as osp
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction

from mmcora.datasets import read_name_list
from mmcora.instructions import load_label_map
from mmcora.models.foundation.sam_pretrain import sam_input
from mmcora.models.sam import SAMWrapper

VOID = 255


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--random',
        action='store_true',
        help='drop model.sam.toy_pretrain (random weights, same architecture)')
    parser.add_argument('--data-root', default='data/toy_city')
    parser.add_argument('--train-list', default='splits/1_30/labeled.txt')
    parser.add_argument('--val-list', default='splits/val.txt')
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--steps', type=int, default=500)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args()


@torch.no_grad()
def encode(sam: SAMWrapper, root: str, split: str,
           names: List[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, C) embedding tokens inside the image and their (N,) majority trainIds."""
    import cv2
    tokens, labels = [], []
    for name in names:
        image = cv2.imread(osp.join(root, 'leftImg8bit', split, f'{name}_leftImg8bit.png'))
        if image is None:
            raise FileNotFoundError(f'{root}: no readable image for {split}/{name}')
        label = load_label_map(osp.join(root, 'gtFine', split, f'{name}_gtFine_labelTrainIds.png'))
        x, _ = sam_input(sam, image[:, :, ::-1])
        embedding = sam.image_encoder(x[None])[0]
        patch = sam.img_size // embedding.shape[-1]
        # whole tokens inside the resized image (SAM pads right and bottom)
        new_h, new_w, _ = SAMWrapper.preprocess_geometry(*label.shape, sam.img_size)
        h, w = new_h // patch, new_w // patch
        resized = cv2.resize(label, (w * patch, h * patch), interpolation=cv2.INTER_NEAREST)
        blocks = torch.from_numpy(resized.astype(np.int64)).view(h, patch, w, patch)
        labels.append(torch.mode(blocks.permute(0, 2, 1, 3).reshape(h * w, -1), 1).values)
        tokens.append(embedding[:, :h, :w].flatten(1).T)
    return torch.cat(tokens), torch.cat(labels)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    sam_cfg = dict(cfg.model.sam)
    sam_cfg.pop('type', None)
    if args.random:
        sam_cfg.pop('toy_pretrain', None)
    torch.manual_seed(0)
    sam = SAMWrapper(**sam_cfg).eval()
    train_x, train_y = encode(sam, args.data_root, 'train',
                              read_name_list(osp.join(args.data_root, args.train_list)))
    val_x, val_y = encode(sam, args.data_root, 'val',
                          read_name_list(osp.join(args.data_root, args.val_list)))
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    keep = train_y != VOID
    head = torch.nn.Linear(train_x.shape[1], args.num_classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(args.steps):
        loss = F.cross_entropy(head(train_x[keep]), train_y[keep])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = head(val_x).argmax(1)
    valid = val_y != VOID
    ious = [
        float(((pred == c) & (val_y == c)).sum() / ((pred == c) & valid | (val_y == c)).sum())
        for c in range(args.num_classes) if (val_y == c).any()
    ]
    print(f'{"random" if args.random else "configured"} SAM: {int(keep.sum())} training '
          f'tokens, val token accuracy {float((pred == val_y)[valid].float().mean()):.3f}, '
          f'mIoU {100 * np.mean(ious):.1f} over {len(ious)} classes')


if __name__ == '__main__':
    main()
