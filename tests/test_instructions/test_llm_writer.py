"""The GPT-4o instruction writer against a real local chat-completions server."""
import base64
import glob
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import cv2
import numpy as np
import pytest

from mmcora.instructions.llm_writer import (AttributeRequest, AttributeResult, ConditionalRequest,
                                            ConditionalResult, LLMInstructionWriter, LLMWriterError,
                                            ObjectInfo, mask_to_polygons, parse_output)
from .chat_server import ChatServer, Reply, image_url, user_text, valid_content

SECRET = 'sk-test-SECRET123'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', SECRET)
    for name in ('OPENAI_BASE_URL', 'OPENAI_CUSTOM_HEADERS', 'OPENAI_LOG'):
        monkeypatch.delenv(name, raising=False)
    return SECRET


def box_mask(shape, x0, y0, x1, y1):
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def info(name, mask):
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return ObjectInfo(name, bbox, mask_to_polygons(mask))


@pytest.fixture
def scene(tmp_path):
    """A 96x64 street: a car on the left, a bicycle on the right, a road below."""
    image = np.full((64, 96, 3), 90, np.uint8)
    image[40:, :] = (60, 60, 60)
    image[20:40, 8:40] = (0, 0, 200)
    image[24:40, 60:80] = (0, 200, 0)
    path = str(tmp_path / 'street.png')
    assert cv2.imwrite(path, image)
    objects = {
        'car': info('car', box_mask((64, 96), 8, 20, 40, 40)),
        'bicycle': info('bicycle', box_mask((64, 96), 60, 24, 80, 40)),
        'road': info('road', box_mask((64, 96), 0, 40, 96, 64))
    }
    return path, objects


def attribute(scene, name='car', item=None):
    path, objects = scene
    target = ObjectInfo(name, objects['car'].bbox, objects['car'].polygons)
    return AttributeRequest(item or f'street#attribute:{name}', path, target,
                            'the four-wheeled passenger vehicles',
                            [objects['bicycle'], objects['road']])


def conditional(scene, relation='left'):
    path, objects = scene
    return ConditionalRequest('street#conditional:car', path, objects['car'], objects['bicycle'],
                              relation)


def writer_for(server, tmp_path, **kwargs):
    args = dict(
        cache_dir=str(tmp_path / 'cache'),
        base_url=server.base_url,
        max_retries=2,
        backoff_base=0.01,
        backoff_max=0.05,
        timeout=10,
        progress=False)
    args.update(kwargs)
    return LLMInstructionWriter(**args)


def always_valid(item, body, attempt):
    return Reply(content=valid_content(body))


def cache_files(tmp_path):
    return sorted(glob.glob(str(tmp_path / 'cache' / '*' / '*.json')))


def test_mask_to_polygons():
    rect = mask_to_polygons(box_mask((40, 60), 10, 5, 30, 25))
    assert len(rect) == 1 and len(rect[0]) == 4
    xs, ys = zip(*rect[0])
    assert (min(xs), min(ys), max(xs), max(ys)) == (10, 5, 29, 24)
    two = box_mask((40, 60), 0, 0, 5, 5) | box_mask((40, 60), 20, 10, 50, 30)
    polygons = mask_to_polygons(two)
    assert [min(x for x, _ in p) for p in polygons] == [20, 0]  # largest first
    specks = np.zeros((40, 60), bool)
    specks[3, 3] = True
    specks[10, 5:30] = True  # a one-pixel line has no area
    assert mask_to_polygons(specks) == []
    disk = cv2.circle(np.zeros((200, 200), np.uint8), (100, 100), 80, 1, -1)
    assert len(mask_to_polygons(disk, max_points=8)[0]) <= 8
    assert len(mask_to_polygons(disk, max_points=64)[0]) > 8


def test_writes_both_kinds_and_accounts_cost(scene, tmp_path):
    with ChatServer(always_valid, api_key=SECRET) as server:
        writer = writer_for(
            server, tmp_path, price_per_million_input=2.5, price_per_million_output=10.0)
        results = writer.write([attribute(scene), conditional(scene)])
    assert isinstance(results[0], AttributeResult)
    assert results[0].description == 'the region inside the given outline'
    assert isinstance(results[1], ConditionalResult)
    assert results[1].relation == 'left' and '<anchor>' in results[1].question
    assert results[1].answer == 'Sure, it is [SEG].'
    usage = writer.usage
    assert (usage.requests, usage.cache_hits) == (2, 0)
    assert (usage.prompt_tokens, usage.completion_tokens) == (2000, 200)
    assert usage.cost_usd == pytest.approx(2000 * 2.5e-6 + 200 * 10e-6)
    assert '2 requests sent' in writer.summary() and '$0.0070' in writer.summary()
    # What was sent: our prompt, a JSON schema, the image as a data URL.
    attr_body, cond_body = sorted(server.bodies, key=lambda b: 'Anchor class' in user_text(b))
    assert attr_body['model'] == 'gpt-4o'
    assert 'camera is the frame of reference' in attr_body['messages'][0]['content']
    assert attr_body['response_format']['type'] == 'json_schema'
    assert 'Hint (a description' in user_text(attr_body) and '- road: box' in user_text(attr_body)
    assert 'Relation: left' in user_text(cond_body) and '<anchor>' in user_text(cond_body)
    schema = cond_body['response_format']['json_schema']['schema']
    assert schema['properties']['relation']['enum'] == ['left']
    assert image_url(attr_body).startswith('data:image/jpeg;base64,')


def test_downscales_image_and_polygons(scene, tmp_path):
    big = np.zeros((100, 200, 3), np.uint8)
    path = str(tmp_path / 'big.png')
    cv2.imwrite(path, big)
    target = info('car', box_mask((100, 200), 40, 20, 120, 60))
    request = AttributeRequest('big#attribute:car', path, target, 'cars', [])
    with ChatServer(always_valid) as server:
        writer_for(server, tmp_path, max_image_side=50).write([request])
    body = server.bodies[0]
    data = base64.b64decode(image_url(body).split(',', 1)[1])
    sent = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert sent.shape[:2] == (25, 50)
    text = user_text(body)
    assert 'Image size: 50x25 pixels.' in text
    assert '- car: box [10, 5, 30, 15]; outlines [[[10,5],[10,15],[30,15],[30,5]]]' in text


def test_malformed_json_once_then_valid(scene, tmp_path):

    def script(item, body, attempt):
        return Reply(content='{"description": "the' if attempt == 0 else valid_content(body))

    with ChatServer(script) as server:
        writer = writer_for(server, tmp_path)
        [result] = writer.write([attribute(scene)])
    assert result.question.startswith('Please segment')
    assert server.received['car'] == 2
    assert writer.usage.prompt_tokens == 2000  # the malformed reply was billed too


def test_always_malformed_fails_naming_the_item(scene, tmp_path):
    with ChatServer(lambda item, body, attempt: Reply(content='not json')) as server:
        with pytest.raises(LLMWriterError) as error:
            writer_for(server, tmp_path, max_retries=2).write([attribute(scene)])
    assert 'street#attribute:car' in str(error.value) and 'not valid JSON' in str(error.value)
    assert server.received['car'] == 3
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize('data, problem', [
    ({
        'description': 'the red shapes'
    }, "'question'"),
    ({
        'description': 'the red shapes',
        'question': '  '
    }, "'question'"),
    ({
        'description': 'the red shapes',
        'question': 7
    }, "'question'"),
    ({
        'description': 'the red shapes',
        'question': 'Segment all Cars.'
    }, 'names the class'),
    ({
        'description': 'the car bodies',
        'question': 'Segment the red shapes.'
    }, 'names the class'),
    (['not', 'an', 'object'], 'JSON object'),
])
def test_attribute_reply_checks(scene, data, problem):
    with pytest.raises(ValueError, match=problem):
        parse_output(data, attribute(scene))


def test_class_name_check_matches_whole_words(scene):
    ok = parse_output({
        'description': ' a scar ',
        'question': 'Segment the carpet.'
    }, attribute(scene))
    assert ok == AttributeResult('a scar', 'Segment the carpet.')  # 'carpet' is no 'car'
    request = attribute(scene, name='traffic light')
    with pytest.raises(ValueError, match='names the class'):
        parse_output({'description': 'x', 'question': 'Segment the Traffic  Lights.'}, request)


@pytest.mark.parametrize('change, problem', [
    (dict(question='Segment the car left of the bicycle.'), '<anchor> exactly once'),
    (dict(question='Segment <anchor> left of <anchor>.'), '<anchor> exactly once'),
    (dict(answer='Sure.'), r'\[SEG\] exactly once'),
    (dict(answer='[SEG] and [SEG]'), r'\[SEG\] exactly once'),
    (dict(relation='right'), "relation 'right' differs"),
    (dict(relation=''), "'relation'"),
])
def test_conditional_reply_checks(scene, change, problem):
    good = dict(
        question='Segment the car left of the bicycle <anchor>.',
        answer='It is [SEG].',
        relation='left')
    assert parse_output(good, conditional(scene)).relation == 'left'
    with pytest.raises(ValueError, match=problem):
        parse_output({**good, **change}, conditional(scene))


def test_429_with_retry_after_then_success(scene, tmp_path):

    def script(item, body, attempt):
        if attempt == 0:
            return Reply(429, headers={'Retry-After': '0'})
        return Reply(content=valid_content(body))

    with ChatServer(script) as server:
        [result] = writer_for(server, tmp_path).write([conditional(scene)])
    assert result.relation == 'left'
    assert server.received['car'] == 2


def test_retry_after_is_honoured_and_capped(scene, tmp_path):

    def script(wait):
        return lambda item, body, attempt: (
            Reply(429, headers={'Retry-After': wait})
            if attempt == 0 else Reply(content=valid_content(body)))

    with ChatServer(script('0.4')) as server:  # no backoff of our own: only the header waits
        start = time.monotonic()
        writer_for(server, tmp_path, backoff_base=0.0, backoff_max=5).write([attribute(scene)])
        assert time.monotonic() - start >= 0.4
    with ChatServer(script('3600')) as server:  # an hour is capped at backoff_max
        start = time.monotonic()
        writer_for(server, tmp_path / 'b', backoff_max=0.05).write([attribute(scene)])
        assert time.monotonic() - start < 5


def test_500_every_time_fails_after_max_retries(scene, tmp_path, caplog):
    with ChatServer(lambda item, body, attempt: Reply(500)) as server:
        with pytest.raises(LLMWriterError) as error:
            writer_for(server, tmp_path, max_retries=3).write([attribute(scene)])
    assert server.received['car'] == 4
    assert 'street#attribute:car' in str(error.value) and 'HTTP 500' in str(error.value)
    assert 'retry 3/3' in caplog.text


def test_400_fails_at_once(scene, tmp_path):
    body = {'error': {'message': 'Invalid image.', 'type': 'invalid_request_error'}}
    with ChatServer(lambda item, b, attempt: Reply(400, body=body)) as server:
        with pytest.raises(LLMWriterError) as error:
            writer_for(server, tmp_path, max_retries=3).write([attribute(scene)])
    assert server.received['car'] == 1
    assert 'street#attribute:car' in str(error.value) and 'HTTP 400' in str(error.value)
    assert 'Invalid image.' in str(error.value)


def test_dropped_connection_is_retried(scene, tmp_path):

    def script(item, body, attempt):
        return Reply(drop=True) if attempt == 0 else Reply(content=valid_content(body))

    with ChatServer(script) as server:
        [result] = writer_for(server, tmp_path).write([attribute(scene)])
    assert server.received['car'] == 2 and result.description


def test_relation_mismatch_is_rejected(scene, tmp_path):

    def wrong_relation(body):
        return json.dumps({**json.loads(valid_content(body)), 'relation': 'right'})

    def once(item, body, attempt):
        return Reply(content=wrong_relation(body) if attempt == 0 else valid_content(body))

    with ChatServer(once) as server:
        [result] = writer_for(server, tmp_path).write([conditional(scene)])
    assert result.relation == 'left' and server.received['car'] == 2
    with ChatServer(lambda item, body, attempt: Reply(content=wrong_relation(body))) as server:
        with pytest.raises(LLMWriterError, match="street#conditional:car.*relation 'right'"):
            writer_for(server, tmp_path / 'b', max_retries=2).write([conditional(scene)])
    assert server.received['car'] == 3


def test_cut_off_reply_is_retried(scene, tmp_path):

    def script(item, body, attempt):
        if attempt == 0:
            return Reply(content='{"description": "the', finish_reason='length')
        return Reply(content=valid_content(body))

    with ChatServer(script) as server:
        writer_for(server, tmp_path).write([attribute(scene)])
    assert server.received['car'] == 2


def test_cache_answers_a_rerun_without_requests(scene, tmp_path):
    requests = [attribute(scene, name) for name in ('car', 'truck', 'bus')] + [conditional(scene)]
    with ChatServer(always_valid) as server:
        first = writer_for(server, tmp_path).write(requests)
        assert len(cache_files(tmp_path)) == 4
        again = writer_for(server, tmp_path)  # a fresh writer on the same cache
        assert again.write(requests) == first
        assert (again.usage.requests, again.usage.cache_hits) == (0, 4)
        # A different relation (or prompt, model, image) is a different key.
        writer_for(server, tmp_path).write([conditional(scene, 'above')])
    assert sum(server.received.values()) == 5
    record = json.loads(open(cache_files(tmp_path)[0]).read())
    assert {'key', 'item_id', 'model', 'prompt_version', 'result', 'usage'} <= set(record)
    assert os.path.basename(cache_files(tmp_path)[0]) == record['key'] + '.json'
    assert not any('base64' in open(f).read() for f in cache_files(tmp_path))


def test_concurrency_limit_and_request_order(scene, tmp_path):
    names = [f'thing{i}' for i in range(6)]

    def script(item, body, attempt):  # earlier items answer later: order must still hold
        index = names.index(item)
        return Reply(content=valid_content(body, tag=f' #{index}'), delay=0.3 - 0.05 * index)

    with ChatServer(script) as server:
        results = writer_for(
            server, tmp_path, max_concurrency=2).write([attribute(scene, name) for name in names])
    assert [r.question for r in results
            ] == [f'Please segment the region inside the given outline #{i}.' for i in range(6)]
    assert server.max_in_flight == 2


KILL_SCRIPT = textwrap.dedent('''
    import json, sys
    from mmcora.instructions.llm_writer import AttributeRequest, LLMInstructionWriter, ObjectInfo
    spec = json.load(open(sys.argv[1]))
    requests = [AttributeRequest(r['item'], spec['image'], ObjectInfo(r['name'], r['bbox'],
                                                                      r['polygons']), 'hint')
                for r in spec['requests']]
    writer = LLMInstructionWriter(cache_dir=spec['cache'], base_url=spec['base_url'],
                                  max_concurrency=1, max_retries=0, progress=False)
    writer.write(requests)
''')


def test_killed_run_resumes_from_cache(scene, tmp_path):
    path, objects = scene
    names, answered_before_kill = [f'thing{i}' for i in range(6)], 3
    release = threading.Event()
    slow = threading.Event()  # set after the kill: the rerun is answered at once

    def script(item, body, attempt):
        if names.index(item) >= answered_before_kill and not slow.is_set():
            return Reply(hold=release)  # the first run hangs here until it is killed
        return Reply(content=valid_content(body))

    spec = dict(
        image=path,
        cache=str(tmp_path / 'cache'),
        requests=[
            dict(
                item=f'street#attribute:{n}',
                name=n,
                bbox=objects['car'].bbox,
                polygons=objects['car'].polygons) for n in names
        ])
    with ChatServer(script, api_key=SECRET) as server:
        spec['base_url'] = server.base_url
        (tmp_path / 'spec.json').write_text(json.dumps(spec))
        proc = subprocess.Popen([sys.executable, '-c', KILL_SCRIPT,
                                 str(tmp_path / 'spec.json')],
                                cwd=REPO,
                                env={
                                    **os.environ, 'PYTHONPATH': REPO
                                },
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 120
        while server.received[names[answered_before_kill]] == 0:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, 'the writer subprocess made no progress'
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        slow.set()
        release.set()
        assert len(cache_files(tmp_path)) == answered_before_kill
        writer = writer_for(server, tmp_path)
        requests = [
            AttributeRequest(r['item'], path, ObjectInfo(r['name'], r['bbox'], r['polygons']),
                             'hint') for r in spec['requests']
        ]
        results = writer.write(requests)
    assert len(results) == len(names) and all(isinstance(r, AttributeResult) for r in results)
    assert all(server.answered[n] == 1 for n in names), server.answered  # nobody paid twice
    assert all(server.received[n] == 1 for n in names[:answered_before_kill])
    assert server.received[names[answered_before_kill]] == 2  # cut off in flight, then resent
    assert writer.usage.cache_hits == answered_before_kill
    assert writer.usage.requests == len(names) - answered_before_kill
    assert SECRET not in stderr


def test_api_key_never_leaks(scene, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with ChatServer(always_valid, api_key=SECRET) as server:
        writer = writer_for(server, tmp_path, progress=True)
        writer.write([attribute(scene), conditional(scene)])
    assert set(server.authorizations) == {f'Bearer {SECRET}'}  # the key was used ...

    def echo(item, body, attempt):  # ... by a server that echoes it in errors
        return Reply(
            401 if item == 'car' else 500,
            body={'error': {
                'message': f'Incorrect API key provided: {SECRET}.'
            }})

    messages = []
    with ChatServer(echo) as server:
        for request in (attribute(scene, 'bus'), attribute(scene, 'car')):
            with pytest.raises(LLMWriterError) as error:
                writer_for(server, tmp_path / 'echo', max_retries=1).write([request])
            messages.append(str(error.value))
    assert 'HTTP 401' in messages[1] and 'HTTP 500' in messages[0]
    captured = capsys.readouterr()
    assert 'instructions' in captured.err  # the progress bar was drawn
    texts = messages + [caplog.text, captured.out, captured.err, repr(writer), str(vars(writer))]
    texts += [open(f).read() for f in cache_files(tmp_path)]
    assert all(SECRET not in text for text in texts)
    assert any('***' in m for m in messages)


def test_missing_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv('OPENAI_API_KEY')
    with pytest.raises(LLMWriterError, match='OPENAI_API_KEY is not set.*offline'):
        LLMInstructionWriter(cache_dir=str(tmp_path))
    monkeypatch.setenv('MY_KEY', '  ')
    with pytest.raises(LLMWriterError, match='MY_KEY is not set'):
        LLMInstructionWriter(cache_dir=str(tmp_path), api_key_env='MY_KEY')


def test_bad_requests_fail_before_sending(scene, tmp_path):
    with ChatServer(always_valid) as server:
        writer = writer_for(server, tmp_path)
        with pytest.raises(ValueError, match="relation 'sideways'"):
            writer.write([attribute(scene), conditional(scene, 'sideways')])
        missing = AttributeRequest('gone#attribute:car', str(tmp_path / 'gone.png'),
                                   attribute(scene).target, 'cars', [])
        with pytest.raises(LLMWriterError, match='gone#attribute:car: cannot read image'):
            writer.write([missing])
        assert writer.write([]) == []
    assert sum(server.received.values()) == 0
