"""A local OpenAI chat-completions server for tests: real HTTP, scripted per item.

The writer under test talks to it through the official ``openai`` client (``base_url`` is
``http://127.0.0.1:<port>/v1``, so requests arrive at ``POST /v1/chat/completions``). A
script decides each reply from the item (the target class named in the prompt), the parsed
request body and the attempt number of that item; the server counts requests per item.
"""
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

from mmcora.instructions.vocabulary import RELATION_PHRASES

TARGET_LINE = re.compile(r'^Target class: (.+)$', re.MULTILINE)
ANCHOR_LINE = re.compile(r'^Anchor class: (.+)$', re.MULTILINE)
RELATION_LINE = re.compile(r'^Relation: (\w+)', re.MULTILINE)


@dataclass
class Reply:
    """What the server answers to one request.

    Args:
        status (int): HTTP status.
        content (str, optional): ``choices[0].message.content`` of a 200 reply.
        body (dict, optional): A JSON body to send instead of the generated one (errors, odd
            bodies).
        headers (dict[str, str]): Extra response headers (e.g. ``Retry-After``).
        delay (float): Seconds to wait before answering.
        hold (threading.Event, optional): Wait for this event (at most 60 s), then close the
            connection unanswered.
        drop (bool): Close the connection without answering (a connection error for the client).
        prompt_tokens (int): ``usage.prompt_tokens`` of a 200 reply.
        completion_tokens (int): ``usage.completion_tokens`` of a 200 reply.
        finish_reason (str): ``choices[0].finish_reason`` of a 200 reply.
    """
    status: int = 200
    content: Optional[str] = None
    body: Optional[dict] = None
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: Optional[threading.Event] = None
    drop: bool = False
    prompt_tokens: int = 1000
    completion_tokens: int = 100
    finish_reason: str = 'stop'


def user_text(body: dict) -> str:
    """The text part of the last user message of a request body."""
    content = body['messages'][-1]['content']
    return ' '.join(part['text'] for part in content if part.get('type') == 'text')


def image_url(body: dict) -> str:
    """The image URL of the last user message."""
    content = body['messages'][-1]['content']
    return next(part['image_url']['url'] for part in content if part.get('type') == 'image_url')


def item_of(body: dict) -> str:
    """The item a request is about: the target class named in the prompt."""
    match = TARGET_LINE.search(user_text(body))
    return match.group(1).strip() if match else '?'


def valid_content(body: dict, tag: str = '') -> str:
    """A reply that passes the writer's checks, built from what the prompt asks for.

    ``tag`` is woven into the question so that tests can tell replies apart.
    """
    text = user_text(body)
    relation = RELATION_LINE.search(text)
    if relation is None:  # attribute task
        return json.dumps({
            'description': 'the region inside the given outline',
            'question': f'Please segment the region inside the given outline{tag}.'
        })
    anchor = ANCHOR_LINE.search(text).group(1).strip()
    phrase = RELATION_PHRASES[relation.group(1)]
    return json.dumps({
        'question': f'Segment what is {phrase} the {anchor} <anchor>{tag}.',
        'answer': 'Sure, it is [SEG].',
        'relation': relation.group(1)
    })


Script = Callable[[str, dict, int], Reply]


class ChatServer:
    """Threaded HTTP server speaking the chat-completions protocol on 127.0.0.1.

    Args:
        script (Script): ``(item, body, attempt) -> Reply``; ``attempt`` counts from 0 per item.
        api_key (str, optional): Answer 401 unless the request carries
            ``Authorization: Bearer <api_key>``.

    Attributes:
        received: Requests per item.
        answered: 200 replies per item that were written out completely.
        bodies: Parsed request bodies, in arrival order.
        authorizations: ``Authorization`` headers seen.
        max_in_flight: Most requests handled at the same time.
    """

    def __init__(self, script: Script, api_key: Optional[str] = None) -> None:
        self.script = script
        self.api_key = api_key
        self.received: Counter = Counter()
        self.answered: Counter = Counter()
        self.bodies: List[dict] = []
        self.authorizations: List[str] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(('127.0.0.1', 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self._httpd.server_address[1]}/v1'

    def __enter__(self) -> 'ChatServer':
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _decide(self, body: dict, authorization: str) -> Reply:
        item = item_of(body)
        with self._lock:
            attempt = self.received[item]
            self.received[item] += 1
            self.bodies.append(body)
            self.authorizations.append(authorization)
        if self.api_key is not None and authorization != f'Bearer {self.api_key}':
            return Reply(
                401,
                body={
                    'error': {
                        'message': 'Incorrect API key provided.',
                        'type': 'invalid_request_error',
                        'code': 'invalid_api_key'
                    }
                })
        return self.script(item, body, attempt)

    def _completion(self, body: dict, reply: Reply) -> dict:
        return {
            'id':
            f'chatcmpl-{len(self.bodies)}',
            'object':
            'chat.completion',
            'created':
            int(time.time()),
            'model':
            body.get('model', '?'),
            'choices': [{
                'index': 0,
                'finish_reason': reply.finish_reason,
                'message': {
                    'role': 'assistant',
                    'content': reply.content,
                    'refusal': None
                }
            }],
            'usage': {
                'prompt_tokens': reply.prompt_tokens,
                'completion_tokens': reply.completion_tokens,
                'total_tokens': reply.prompt_tokens + reply.completion_tokens
            }
        }

    def _handler_class(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'  # keep-alive, as the openai client expects

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                length = int(self.headers.get('Content-Length', 0))
                payload = self.rfile.read(length)
                if not self.path.rstrip('/').endswith('/chat/completions'):
                    self._send(404, {'error': {'message': f'no route {self.path}'}}, {})
                    return
                with server._lock:
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    self._answer(json.loads(payload))
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _answer(self, body: dict) -> None:
                reply = server._decide(body, self.headers.get('Authorization', ''))
                if reply.hold is not None:
                    reply.hold.wait(60)
                if reply.hold is not None or reply.drop:
                    self.close_connection = True
                    return
                time.sleep(reply.delay)
                data = reply.body if reply.body is not None else (
                    server._completion(body, reply) if reply.status == 200 else {
                        'error': {
                            'message': f'scripted HTTP {reply.status}',
                            'type': 'server_error'
                        }
                    })
                if self._send(reply.status, data, reply.headers) and reply.status == 200:
                    with server._lock:
                        server.answered[item_of(body)] += 1

            def _send(self, status: int, data: dict, headers: Dict[str, str]) -> bool:
                raw = json.dumps(data).encode('utf-8')
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(raw)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(raw)
                    self.wfile.flush()
                    return True
                except (BrokenPipeError, ConnectionResetError):  # the client is gone
                    self.close_connection = True
                    return False

        return Handler
