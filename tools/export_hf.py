"""Export a trained CORA model in a deployable form: LoRA merged, Hugging Face LLaVA + heads.

    python tools/export_hf.py CONFIG CHECKPOINT OUT [--overwrite] [--cfg-options k=v ...]

CHECKPOINT may be full or trainable-only (the CORA configs' default). OUT receives:

    llava/             LlavaForConditionalGeneration.from_pretrained(OUT/llava) loads it: the
                       LoRA merged into the base weights, the trained token rows, the tokenizer
                       with [SEG] and the anchor tokens, the CLIP image processor
    heads.safetensors  SAM's prompt encoder and mask decoder, the [SEG] projector, the anchor
                       encoder (everything of the segmentor but the LLaVA and SAM's frozen
                       image encoder, which comes from the source config's SAM checkpoint, or
                       OUT/sam.pth when the source SAM had none)
    config.py          builds the same model from OUT (paths relative to the file)
    export.json        the source config and checkpoint (sha256), mmcora version, what was
                       merged, the files and their sizes (written last)

Then ``python tools/test.py OUT`` evaluates it and ``ReasoningSegInferencer(OUT)`` runs it, with
the masks of CONFIG + CHECKPOINT. A SemiCORASegmentor exports as a CORASegmentor (the token
bank and the consistency snapshot are training state). Nothing in OUT looks complete until
the export is: it is written next to OUT and renamed.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction

import mmcora  # noqa: F401  registers mmcora's components and checkpoint fixes
from mmcora.apis.export import export_cora
from mmcora.engine import apply_torch_threads


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (``argv``, default ``sys.argv[1:]``).

    Args:
        argv (list[str], optional): The arguments after the script name.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='its checkpoint (full or trainable-only)')
    parser.add_argument('out', help='the export directory')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an export of another config or checkpoint at OUT')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config (xxx=yyy), as for tools/test.py')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the export and print what was written.

    Args:
        argv (list[str], optional): The arguments after the script name.

    Returns:
        dict: The export's ``export.json``.
    """
    args = parse_args(argv)
    if osp.isfile(args.config):  # the config's thread setting, as the other tools apply it
        apply_torch_threads(Config.fromfile(args.config))
    meta = export_cora(args.config, args.checkpoint, args.out, args.overwrite, args.cfg_options)
    merged = meta['merged']['adapter_layers']
    print(f'exported {args.checkpoint} ({meta["source"]["model_type"]}, '
          f'{"trainable-only" if meta["source"]["trainable_only"] else "full"} checkpoint) to '
          f'{osp.abspath(args.out)}: {merged} adapter layers merged into llava/, '
          f'{len(meta["files"])} files')
    print(f'  python tools/test.py {args.out}')
    return meta


if __name__ == '__main__':
    main(sys.argv[1:])
