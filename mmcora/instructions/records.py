"""Instruction-set files: JSONL with a versioned header, read back with line-exact errors.

Line 1 is the header::

    {"format": "mmcora-instructions", "version": 1, "dataset": "cityscapes", "split": "train",
     "classes": [...], "seed": 0, "writer": "builtin", ...}

Every further line holds the instructions of one image::

    {"image": "aachen/aachen_000000_000019", "height": 1024, "width": 2048,
     "queries": [{"type": "conditional", "text": "...", "answer": "It is [SEG].",
                  "class_id": 13, "class_name": "car",
                  "target": {"class_id": 13, "class_name": "car", "bbox": [x0, y0, x1, y1],
                             "rle": {"size": [h, w], "counts": [...]}},
                  "anchor": {...} | null, "relation": "left" | null, "source": "builtin"}]}

``image`` is the scene name as written in the split lists (``ann_file``). ``target`` null
means the whole class mask of the image's label map (semantic and attribute instructions);
conditional instructions carry their target and anchor objects as run-length masks.
"""
import json
import os
import os.path as osp
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .vocabulary import ANCHOR_PLACEHOLDER, RELATION_PHRASES, SEG_TOKEN

FORMAT = 'mmcora-instructions'
VERSION = 1
QUERY_TYPES = ('semantic', 'attribute', 'conditional')


class InstructionFileError(ValueError):
    """An instruction file is malformed; the message names the file, line and key."""


@dataclass
class ObjectRef:
    """One object (connected component) referred to by an instruction."""
    class_id: int
    class_name: str
    bbox: List[int]
    rle: Dict[str, list]


@dataclass
class Query:
    """One instruction with its answer and what it refers to."""
    type: str
    text: str
    answer: str
    class_id: int
    class_name: str
    target: Optional[ObjectRef] = None
    anchor: Optional[ObjectRef] = None
    relation: Optional[str] = None
    source: str = 'builtin'


@dataclass
class ImageInstructions:
    """All instructions of one image."""
    image: str
    height: int
    width: int
    queries: List[Query] = field(default_factory=list)


def make_header(dataset: str, split: str, classes: Iterable[str], **extra: Any) -> dict:
    return dict(
        format=FORMAT,
        version=VERSION,
        dataset=dataset,
        split=split,
        classes=list(classes),
        **extra)


def write_instruction_file(path: str, header: dict, records: Iterable[ImageInstructions]) -> int:
    """Write a file atomically (a crash leaves any previous file intact).

    Returns:
        Number of image records written.
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path), dir=directory)
    count = 0
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(json.dumps(header, sort_keys=True) + '\n')
            for record in records:
                f.write(json.dumps(asdict(record), sort_keys=True, separators=(',', ':')) + '\n')
                count += 1
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return count


def _need(obj: dict, key: str, kind, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise InstructionFileError(f'{where}: missing key {key!r}')
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        raise InstructionFileError(
            f'{where}: key {key!r} should be {getattr(kind, "__name__", kind)}, '
            f'got {type(value).__name__}')
    return value


def _object(data: Any, where: str) -> Optional[ObjectRef]:
    if data is None:
        return None
    bbox = _need(data, 'bbox', list, where)
    rle = _need(data, 'rle', dict, where)
    if len(bbox) != 4:
        raise InstructionFileError(f'{where}: key \'bbox\' needs 4 numbers, got {len(bbox)}')
    _need(rle, 'size', list, f'{where}.rle')
    _need(rle, 'counts', list, f'{where}.rle')
    return ObjectRef(
        _need(data, 'class_id', int, where), _need(data, 'class_name', str, where), bbox, rle)


def _query(data: Any, where: str, classes: List[str]) -> Query:
    qtype = _need(data, 'type', str, where)
    if qtype not in QUERY_TYPES:
        raise InstructionFileError(f'{where}: key \'type\' is {qtype!r}, not one of {QUERY_TYPES}')
    query = Query(
        type=qtype,
        text=_need(data, 'text', str, where),
        answer=_need(data, 'answer', str, where),
        class_id=_need(data, 'class_id', int, where),
        class_name=_need(data, 'class_name', str, where),
        target=_object(data.get('target'), f'{where}.target'),
        anchor=_object(data.get('anchor'), f'{where}.anchor'),
        relation=data.get('relation'),
        source=data.get('source', 'builtin'))
    if SEG_TOKEN not in query.answer:
        raise InstructionFileError(f'{where}: key \'answer\' lacks {SEG_TOKEN}')
    if not 0 <= query.class_id < len(classes):
        raise InstructionFileError(f'{where}: key \'class_id\' is {query.class_id}, the header '
                                   f'lists {len(classes)} classes')
    if classes[query.class_id] != query.class_name:
        raise InstructionFileError(
            f'{where}: key \'class_name\' is {query.class_name!r} but class {query.class_id} of '
            f'the header is {classes[query.class_id]!r}')
    if qtype != 'conditional' and ANCHOR_PLACEHOLDER in query.text:
        raise InstructionFileError(f'{where}: a {qtype} query\'s text has {ANCHOR_PLACEHOLDER}, '
                                   'which only conditional queries fill')
    if qtype == 'conditional':
        if query.target is None or query.anchor is None:
            raise InstructionFileError(f'{where}: a conditional query needs target and anchor')
        if query.relation not in RELATION_PHRASES:
            raise InstructionFileError(f'{where}: key \'relation\' is {query.relation!r}, not '
                                       f'one of {sorted(RELATION_PHRASES)}')
        if ANCHOR_PLACEHOLDER not in query.text:
            raise InstructionFileError(f'{where}: key \'text\' lacks {ANCHOR_PLACEHOLDER}')
    return query


def read_instruction_file(path: str) -> Tuple[dict, List[ImageInstructions]]:
    """Read and validate an instruction file.

    Raises:
        FileNotFoundError: naming the path.
        InstructionFileError: naming ``path:line`` and the key at fault.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'instruction file not found: {path}')
    records = []
    with open(path, encoding='utf-8') as f:
        header = None
        for number, line in enumerate(f, 1):
            where = f'{path}:{number}'
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                raise InstructionFileError(f'{where}: not valid JSON ({error.msg})') from None
            if header is None:
                if not isinstance(data, dict) or data.get('format') != FORMAT:
                    raise InstructionFileError(f'{where}: not an {FORMAT} header')
                for key in ('dataset', 'classes'):
                    if key not in data:
                        raise InstructionFileError(f'{where}: header lacks key {key!r}')
                if data.get('version') != VERSION:
                    raise InstructionFileError(
                        f'{where}: version {data.get("version")!r} is not supported '
                        f'(this mmcora reads version {VERSION}); rebuild the file with '
                        'tools/build_instructions.py')
                header = data
                continue
            queries = _need(data, 'queries', list, where)
            records.append(
                ImageInstructions(
                    image=_need(data, 'image', str, where),
                    height=_need(data, 'height', int, where),
                    width=_need(data, 'width', int, where),
                    queries=[
                        _query(q, f'{where}:queries[{i}]', header['classes'])
                        for i, q in enumerate(queries)
                    ]))
    if header is None:
        raise InstructionFileError(f'{path}: empty file (no header)')
    return header, records
