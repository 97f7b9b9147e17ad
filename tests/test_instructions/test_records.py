"""Instruction files: round trip, RLE, and errors that name file, line and key."""
import json

import numpy as np
import pytest

from mmcora.instructions import (ImageInstructions, InstructionFileError, ObjectRef, Query,
                                 decode_rle, encode_rle, read_instruction_file,
                                 write_instruction_file)
from mmcora.instructions.records import make_header
from mmcora.utils.class_names import CITYSCAPES_CLASSES


def _record():
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    ref = ObjectRef(13, 'car', [2, 1, 5, 3], encode_rle(mask))
    return ImageInstructions('city/city_000000_000019', 4, 6, [
        Query('semantic', 'Segment the car.', 'It is [SEG].', 13, 'car'),
        Query(
            'conditional',
            'Segment the car left of the car <anchor>.',
            '[SEG].',
            13,
            'car',
            target=ref,
            anchor=ref,
            relation='left')
    ])


@pytest.mark.parametrize('mask', [
    np.zeros((3, 4), bool),
    np.ones((3, 4), bool),
    np.eye(5, dtype=bool),
    np.random.default_rng(0).random((7, 9)) > .5
])
def test_rle_round_trip(mask):
    rle = encode_rle(mask)
    assert sum(rle['counts']) == mask.size
    assert np.array_equal(decode_rle(rle), mask)


def test_rle_size_mismatch_names_the_record():
    with pytest.raises(ValueError, match='file.jsonl:3'):
        decode_rle({'size': [2, 2], 'counts': [1, 1]}, where='file.jsonl:3')


def test_round_trip(tmp_path):
    path = str(tmp_path / 'set.jsonl')
    write_instruction_file(path, make_header('cityscapes', 'train', CITYSCAPES_CLASSES, seed=1),
                           [_record()])
    header, records = read_instruction_file(path)
    assert header['version'] == 1 and header['seed'] == 1
    assert records == [_record()]


def _write_lines(tmp_path, lines):
    path = tmp_path / 'bad.jsonl'
    path.write_text('\n'.join(
        json.dumps(line) if not isinstance(line, str) else line for line in lines))
    return str(path)


def _good_lines():
    from dataclasses import asdict
    return [make_header('cityscapes', 'train', CITYSCAPES_CLASSES), asdict(_record())]


@pytest.mark.parametrize('mutate, message', [
    (lambda ls: ls.__setitem__(1, '{"image": oops'), r'bad.jsonl:2: not valid JSON'),
    (lambda ls: ls[1].pop('width'), r"bad.jsonl:2: missing key 'width'"),
    (lambda ls: ls[1]['queries'][1].update(text='no placeholder'),
     r"bad.jsonl:2:queries\[1\]: key 'text' lacks <anchor>"),
    (lambda ls: ls[1]['queries'][0].update(type='riddle'), r"queries\[0\]: key 'type' is 'riddle'"),
    (lambda ls: ls[1]['queries'][1].update(relation='inside'),
     r"queries\[1\]: key 'relation' is 'inside'"),
    (lambda ls: ls[0].update(version=99), r'bad.jsonl:1: version 99 is not supported'),
    (lambda ls: ls[1]['queries'][0].update(class_id='13'),
     r"queries\[0\]: key 'class_id' should be int, got str"),
    (lambda ls: ls[1]['queries'][0].update(class_id=19),
     r"bad.jsonl:2:queries\[0\]: key 'class_id' is 19, the header lists 19 classes"),
    (lambda ls: ls[1]['queries'][0].update(class_name='automobile'),
     r"queries\[0\]: key 'class_name' is 'automobile' but class 13 of the header is 'car'"),
    (lambda ls: ls[1]['queries'][0].update(text='Segment the car near <anchor>.'),
     r"queries\[0\]: a semantic query's text has <anchor>, which only conditional"),
    (lambda ls: ls.__setitem__(0, '["not", "a header"]'), r'bad.jsonl:1: not an .* header'),
])
def test_errors_name_file_line_and_key(tmp_path, mutate, message):
    lines = _good_lines()
    mutate(lines)
    with pytest.raises(InstructionFileError, match=message):
        read_instruction_file(_write_lines(tmp_path, lines))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='nowhere.jsonl'):
        read_instruction_file('nowhere.jsonl')


def test_interrupted_write_keeps_previous_file(tmp_path):
    path = str(tmp_path / 'set.jsonl')
    write_instruction_file(path, make_header('cityscapes', 'train', CITYSCAPES_CLASSES),
                           [_record()])
    before = open(path).read()

    def broken():
        yield _record()
        raise RuntimeError('crash')

    with pytest.raises(RuntimeError):
        write_instruction_file(path, make_header('cityscapes', 'train', CITYSCAPES_CLASSES),
                               broken())
    assert open(path).read() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['set.jsonl']
