"""Offline engine and builder on the toy city: determinism, correctness, CLI."""
import hashlib
import math
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest

from mmcora.instructions import (LAYOUTS, InstructionEngine, QueryBank, build_instruction_set,
                                 decode_rle, extract_objects, read_instruction_file,
                                 relations_between)
from mmcora.instructions.builder import load_instance_map, load_label_map
from mmcora.instructions.vocabulary import (ANCHOR_PLACEHOLDER, DISPLAY_NAMES, SEMANTIC_TEMPLATES,
                                            VOCABULARIES, display_name, render_text)
from ..conftest import REPO

LAYOUT = LAYOUTS['cityscapes']
ENGINE = InstructionEngine(
    LAYOUT.classes,
    VOCABULARIES['cityscapes'],
    LAYOUT.object_classes,
    LAYOUT.ground_classes,
    instance_classes=LAYOUT.instance_classes)
RULES = ENGINE.rules


def _digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_same_seed_same_file_other_seed_differs(toy_city_root, tmp_path):
    outs = [str(tmp_path / f'{i}.jsonl') for i in range(3)]
    for out, seed in zip(outs, (0, 0, 1)):
        build_instruction_set(
            toy_city_root, 'cityscapes', 'train', 'splits/1_4/labeled.txt', out=out, seed=seed)
    assert _digest(outs[0]) == _digest(outs[1]) != _digest(outs[2])


def test_an_image_gets_the_same_instructions_in_any_split(toy_city_root, tmp_path):
    small = str(tmp_path / 'small.jsonl')
    large = str(tmp_path / 'large.jsonl')
    build_instruction_set(
        toy_city_root, 'cityscapes', 'train', 'splits/1_16/labeled.txt', out=small)
    build_instruction_set(toy_city_root, 'cityscapes', 'train', 'splits/1_4/labeled.txt', out=large)
    by_name = {r.image: r for r in read_instruction_file(large)[1]}
    for record in read_instruction_file(small)[1]:
        assert by_name[record.image] == record


def test_queries_match_the_label_maps(toy_city_root, tmp_path):
    out = str(tmp_path / 'set.jsonl')
    summary = build_instruction_set(
        toy_city_root, 'cityscapes', 'train', 'splits/1_4/unlabeled.txt', out=out)
    header, records = read_instruction_file(out)
    assert header['writer'] == 'builtin' and header['classes'] == list(LAYOUT.classes)
    assert summary['queries']['conditional'] >= 2 * len(records)
    assert summary['images_with_instance_maps'] == len(records)
    for record in records:
        label = load_label_map(LAYOUT.paths(toy_city_root, 'train', record.image)[1])
        instances = load_instance_map(
            LAYOUT.instance_path(toy_city_root, 'train', record.image), label)
        present = set(np.unique(label).tolist()) - {255}
        classes = {q.class_id for q in record.queries if q.type == 'semantic'}
        assert classes <= present and classes == {
            q.class_id
            for q in record.queries if q.type == 'attribute'
        }
        objects = extract_objects(label, ENGINE.object_ids,
                                  max(1, int(ENGINE.min_object_area * label.size)),
                                  math.ceil(ENGINE.min_object_side * label.shape[0]), instances,
                                  ENGINE.instance_ids)
        for query in record.queries:
            if query.type != 'conditional':
                assert query.target is None and query.anchor is None
                continue
            target, anchor = decode_rle(query.target.rle), decode_rle(query.anchor.rle)
            assert not (target & anchor).any()
            assert (label[target] == query.class_id).all()
            assert (label[anchor] == query.anchor.class_id).all()
            assert ANCHOR_PLACEHOLDER in query.text and query.class_name in query.text
            # the relation holds for the target and for no other object of its class
            t = next(o for o in objects if np.array_equal(o.mask, target))
            a = next(o for o in objects if np.array_equal(o.mask, anchor))
            assert query.relation in relations_between(t, a, RULES)
            rivals = [
                o for o in objects if o.class_id == t.class_id and o.index not in (t.index, a.index)
            ]
            assert all(query.relation not in relations_between(o, a, RULES) for o in rivals)


def test_missing_label_map_fails_before_writing(toy_city_root, tmp_path):
    (tmp_path / 'list.txt').write_text('aachen/aachen_000000_000019\nnowhere/nowhere_1_2\n')
    out = tmp_path / 'set.jsonl'
    with pytest.raises(FileNotFoundError, match='nowhere_1_2_gtFine_labelTrainIds.png'):
        build_instruction_set(
            toy_city_root, 'cityscapes', 'train', str(tmp_path / 'list.txt'), out=str(out))
    assert not out.exists()


@pytest.mark.parametrize('dataset', ['cityscapes', 'pannuke'])
def test_builtin_query_banks(dataset):
    bank = QueryBank(dataset)
    assert set(bank.classes) == set(VOCABULARIES[dataset])
    for name in bank.classes:
        queries = bank.queries(name)
        assert len(queries) >= 7 and len(set(queries)) == len(queries)
        description, synonym = VOCABULARIES[dataset][name]
        shown = display_name(name, DISPLAY_NAMES[dataset])
        assert all(shown in q or synonym in q or description in q for q in queries)


def test_pannuke_text_names_cells_not_adjectives():
    """PanNuke's labels are adjectives: text says "the dead cells", never "the dead."."""
    bank = QueryBank('pannuke')
    assert 'Segment the dead cells in this image.' in bank.queries('dead')
    assert 'Segment the car in this image.' in QueryBank('cityscapes').queries('car')
    display = DISPLAY_NAMES['pannuke']
    for label in VOCABULARIES['pannuke']:
        texts = bank.queries(label) + [
            render_text(
                'semantic', label, VOCABULARIES['pannuke'], lambda n, i=i: i % n, display=display)
            for i in range(len(SEMANTIC_TEMPLATES))
        ]
        for text in texts:
            assert not re.search(rf'\bthe {label}\b(?! (cells?|tissue|nuclei))', text), text
    text = render_text('conditional', 'dead', VOCABULARIES['pannuke'], lambda n: 0, 'left',
                       'neoplastic', display)
    assert text.startswith('Can you segment the dead cell that is to the left of the '
                           'neoplastic cell ' + ANCHOR_PLACEHOLDER), text


def test_query_bank_extension_and_errors(tmp_path):
    extra = tmp_path / 'bank.json'
    extra.write_text('{"car": ["Find the cars."], "scooter": ["a", "b", "c", "d", "e", "f", "g"]}')
    # A class Cityscapes lacks is refused where the classes are known (tests/test_datasets/
    # test_bad_data.py); without a built-in bank or known classes the file defines them.
    with pytest.raises(ValueError, match=r"bank.json: not classes of this data set: 'scooter'"):
        QueryBank('cityscapes', str(extra))
    bank = QueryBank(None, str(extra), min_queries=1)
    assert bank.queries('car') == ['Find the cars.'] and len(bank.queries('scooter')) == 7
    extra.write_text('{"car": ["Find the cars."]}')
    bank = QueryBank('cityscapes', str(extra))
    assert 'Find the cars.' in bank.queries('car')
    picked = bank.sample('car', 7, np.random.default_rng(0))
    assert len(set(picked)) == 7
    extra.write_text('{"scooter": ["only one"]}')
    with pytest.raises(ValueError, match=r"'scooter' has 1 queries \(from .*bank.json\)"):
        QueryBank(None, str(extra))
    extra.write_text('{"car": [1, 2]}')
    with pytest.raises(ValueError, match="bank.json: class 'car'"):
        QueryBank('cityscapes', str(extra))


def test_cli_builds_train_and_val_sets(toy_city_root, tmp_path):
    env_cmd = [sys.executable, osp.join(REPO, 'tools', 'build_instructions.py'), toy_city_root]
    for split, ann in (('train', 'splits/1_30/labeled.txt'), ('val', 'splits/val.txt')):
        out = str(tmp_path / f'{split}.jsonl')
        result = subprocess.run(
            env_cmd + ['--ann-file', ann, '--split', split, '--out', out, '--offline'],
            capture_output=True,
            text=True,
            check=True)
        assert 'writer: built-in' in result.stdout
        assert len(read_instruction_file(out)[1]) == len(
            open(osp.join(toy_city_root, ann)).read().split())
    before = _digest(out)
    result = subprocess.run(
        env_cmd + [
            '--ann-file', 'splits/val.txt', '--split', 'val', '--out', out, '--offline', '--seed',
            '5'
        ],
        capture_output=True,
        text=True,
        check=True)
    assert 'exists; kept' in result.stdout and _digest(out) == before


def test_builder_words_attribute_and_conditional_with_the_llm(toy_city_root, tmp_path, monkeypatch):
    from mmcora.instructions.llm_writer import LLMInstructionWriter
    from .chat_server import ChatServer, Reply, valid_content
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-test-builder')
    out = str(tmp_path / 'gpt.jsonl')
    with ChatServer(lambda item, body, attempt: Reply(content=valid_content(body))) as server:
        writer = LLMInstructionWriter(
            cache_dir=str(tmp_path / 'cache'),
            base_url=server.base_url,
            progress=False,
            backoff_base=0.01)
        build_instruction_set(
            toy_city_root, 'cityscapes', 'train', 'splits/1_16/labeled.txt', out=out, writer=writer)
        sent = sum(server.received.values())
    header, records = read_instruction_file(out)
    queries = [q for r in records for q in r.queries]
    assert header['writer'] == 'gpt-4o'
    assert {q.source for q in queries if q.type == 'semantic'} == {'builtin'}
    worded = [q for q in queries if q.type != 'semantic']
    assert worded and {q.source for q in worded} == {'gpt-4o'}
    assert sent == len(worded) == writer.usage.requests
    for query in worded:
        if query.type == 'conditional':  # geometry decided the relation, the LLM worded it
            assert query.text.count(ANCHOR_PLACEHOLDER) == 1
            assert query.answer == 'Sure, it is [SEG].'
        else:
            assert query.text == 'Please segment the region inside the given outline.'
