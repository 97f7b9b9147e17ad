"""GPT-4o instruction writer: attribute and conditional instructions phrased by an LLM.

CORA (§3.4) builds its attribute and conditional instructions with GPT-4o from the image,
the mask polygons and class descriptions. This writer sends one chat-completions request per
instruction through the official ``openai`` client and checks every reply against a schema.
The geometry (which relation holds) is decided by us (relations.py); the LLM only phrases it.

Paying twice is the costly failure, so every result is stored in an on-disk cache as soon as
it arrives (one JSON file per request, written atomically) and a cached request is never sent
again: a run that is killed midway resumes where it stopped.
"""
import email.utils
import functools
import hashlib
import json
import logging
import os
import os.path as osp
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import openai
from tqdm import tqdm

from . import llm_prompts as prompts
from .llm_prompts import EncodedImage, Point, mask_to_polygons  # noqa: F401  (public here)
from .vocabulary import RELATION_PHRASES

logger = logging.getLogger(__name__)


class LLMWriterError(RuntimeError):
    """The LLM writer cannot produce an instruction; the message names the item."""


@dataclass
class ObjectInfo:
    """An object or a whole class region shown to the LLM.

    Args:
        class_name (str): Class name, as in the vocabulary.
        bbox (tuple[int, int, int, int]): ``(x0, y0, x1, y1)`` in image pixels, x1/y1 exclusive.
        polygons (list[list[Point]]): Outlines in image pixels (see :func:`mask_to_polygons`).
    """
    class_name: str
    bbox: Tuple[int, int, int, int]
    polygons: List[List[Point]] = field(default_factory=list)

    def describe(self, image: EncodedImage) -> str:
        """The object's prompt line, in the pixel frame of the image as sent."""
        return prompts.format_object(self.class_name, self.bbox, self.polygons, image)


@dataclass
class AttributeRequest:
    """Ask for a description of a class and a question that uses it.

    Args:
        item_id (str): Stable id, e.g. ``'aachen/aachen_000000_000019#attribute:car'``.
        image_path (str): The image file.
        target (ObjectInfo): The whole class region (the polygons of all its components).
        builtin_description (str): Our own description of the class, given as a hint.
        others (list[ObjectInfo]): The other classes/objects of the scene, to tell the target apart
            from.
    """
    item_id: str
    image_path: str
    target: ObjectInfo
    builtin_description: str
    others: List[ObjectInfo] = field(default_factory=list)


@dataclass
class ConditionalRequest:
    """Ask for a question about a target object through its relation to an anchor object.

    Args:
        item_id (str): Stable id of the instruction.
        image_path (str): The image file.
        target (ObjectInfo): The object to segment.
        anchor (ObjectInfo): The reference object.
        relation (str): Key of ``RELATION_PHRASES`` judged from geometry, e.g. ``'left'``.
    """
    item_id: str
    image_path: str
    target: ObjectInfo
    anchor: ObjectInfo
    relation: str


@dataclass
class AttributeResult:
    """A class description and a question that refers to the class only through it."""
    description: str
    question: str


@dataclass
class ConditionalResult:
    """A question with ``<anchor>``, an answer with ``[SEG]`` and the (unchanged) relation."""
    question: str
    answer: str
    relation: str


Request = Union[AttributeRequest, ConditionalRequest]
Result = Union[AttributeResult, ConditionalResult]


@dataclass
class WriterUsage:
    """What a writer has used so far (all its ``write`` calls together).

    Attributes:
        requests: HTTP requests sent, retries included.
        cache_hits: Items answered from the cache.
        prompt_tokens: Input tokens billed (as reported by the server).
        completion_tokens: Output tokens billed.
        cost_usd: Estimated cost from the writer's prices per million tokens.
    """
    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def summary(self) -> str:
        """One line for logs."""
        return (f'{self.requests} requests sent, {self.cache_hits} cache hits, '
                f'{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens, '
                f'estimated cost ${self.cost_usd:.4f}')


def _user_text(request: Request, image: EncodedImage) -> str:
    target = request.target
    if isinstance(request, AttributeRequest):
        return prompts.attribute_prompt(image.width, image.height, target.class_name,
                                        target.describe(image), request.builtin_description,
                                        [o.describe(image) for o in request.others])
    return prompts.conditional_prompt(image.width, image.height, target.class_name,
                                      target.describe(image), request.anchor.class_name,
                                      request.anchor.describe(image), request.relation)


def parse_output(data: Any, request: Request) -> Result:
    """Validate the LLM's JSON object against the request and turn it into a result.

    Raises:
        ValueError: What is wrong (a missing key, the class named, a wrong relation, ...).
    """
    if isinstance(request, AttributeRequest):
        return AttributeResult(*prompts.check_attribute(data, request.target.class_name))
    return ConditionalResult(*prompts.check_conditional(data, request.relation))


class _ResultCache:
    """One JSON file per cache key under ``root/<key[:2]>/<key>.json``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, key: str) -> str:
        return osp.join(self.root, key[:2], key + '.json')

    def load(self, key: str, request: Request) -> Optional[Result]:
        """The cached result, or None; an unreadable or invalid entry counts as missing."""
        path = self.path(key)
        if not osp.isfile(path):
            return None
        try:
            with open(path, encoding='utf-8') as f:
                return parse_output(json.load(f)['result'], request)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning('%s: ignoring cache entry %s (%s)', request.item_id, path, error)
            return None

    def store(self, key: str, record: Dict[str, Any]) -> None:
        """Write atomically (tmp + os.replace): a kill leaves no half-written entry."""
        path = self.path(key)
        os.makedirs(osp.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.' + key[:8], suffix='.tmp', dir=osp.dirname(path))
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                json.dump(record, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)


def _retry_after(response: Any) -> Optional[float]:
    """Seconds the server asks us to wait: ``Retry-After-Ms``, or ``Retry-After`` in seconds
    or as an HTTP date; None when absent or unreadable."""
    headers = getattr(response, 'headers', None) or {}
    try:
        if headers.get('retry-after-ms') is not None:
            return max(0.0, float(headers['retry-after-ms']) / 1000)
        value = headers.get('retry-after')
        if value is None or value.strip().replace('.', '', 1).isdigit():
            return None if value is None else float(value)
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class LLMInstructionWriter:
    """Writes attribute and conditional instructions with GPT-4o (or a compatible server).

    Args:
        cache_dir (str): Directory of the result cache (one JSON file per request).
        model (str): Chat model name.
        base_url (str, optional): API base URL; None for the client's default (OpenAI, or
            ``OPENAI_BASE_URL``).
        max_concurrency (int): Requests in flight at once (worker threads).
        max_retries (int): Retries per item after the first attempt, for HTTP 429/5xx, connection
            errors, timeouts and invalid replies alike.
        backoff_base (float): First retry delay in seconds; doubles per retry, with jitter.
        backoff_max (float): Longest delay in seconds, also the cap of a server's ``Retry-After``.
        timeout (float): Seconds per HTTP request.
        max_image_side (int): Images are downscaled so that their longest side is at most this.
        price_per_million_input (float): USD per million prompt tokens, for the cost estimate.
        price_per_million_output (float): USD per million completion tokens.
        api_key_env (str): Environment variable holding the API key (the only source of the key).
        progress (bool): Show a progress bar.

    Raises:
        LLMWriterError: The API-key variable is unset or empty.
    """

    def __init__(self,
                 cache_dir: str,
                 model: str = 'gpt-4o',
                 base_url: Optional[str] = None,
                 max_concurrency: int = 4,
                 max_retries: int = 5,
                 backoff_base: float = 1.0,
                 backoff_max: float = 30.0,
                 timeout: float = 60.0,
                 max_image_side: int = 1024,
                 price_per_million_input: float = 2.5,
                 price_per_million_output: float = 10.0,
                 api_key_env: str = 'OPENAI_API_KEY',
                 progress: bool = True) -> None:
        if max_concurrency < 1 or max_retries < 0 or max_image_side < 1:
            raise ValueError('max_concurrency and max_image_side must be >= 1, max_retries >= 0')
        self.cache_dir, self.model, self.base_url = cache_dir, model, base_url
        self.max_concurrency, self.max_retries = max_concurrency, max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.prices = (price_per_million_input, price_per_million_output)
        self.progress = progress
        api_key = os.environ.get(api_key_env, '').strip()
        if not api_key:
            raise LLMWriterError(
                f'environment variable {api_key_env} is not set: set it to your OpenAI API key '
                f'to write instructions with {model}, or use the offline (built-in) '
                'instruction engine')
        # Servers may echo the key (e.g. in a 401 body): every message we emit goes through
        # this. A closure, not an attribute, so the key shows up in no vars() or state dump.
        self._redact = lambda text: text.replace(api_key, '***')
        # Retries are ours (max_retries=0 here): invalid replies must count toward them too.
        self._client = openai.OpenAI(
            api_key=api_key,
            max_retries=0,
            timeout=timeout,
            **({} if base_url is None else dict(base_url=base_url)))
        self._cache = _ResultCache(cache_dir)
        # Requests of one image usually come together; keep a few encoded images around.
        self._image = functools.lru_cache(maxsize=2 * max_concurrency + 4)(
            functools.partial(prompts.encode_image, max_side=max_image_side))
        self._lock = threading.Lock()
        self._key_locks: Dict[str, threading.Lock] = {}
        self._usage = WriterUsage()

    @property
    def usage(self) -> WriterUsage:
        """A snapshot of the usage so far."""
        with self._lock:
            return WriterUsage(**asdict(self._usage))

    def summary(self) -> str:
        """One line: requests sent, cache hits, tokens and estimated cost."""
        return f'{self.model} instruction writer: {self.usage.summary()}'

    def write(self, requests: Sequence[Request]) -> List[Result]:
        """Results for the requests, in request order (cached ones are not sent again).

        Raises:
            LLMWriterError: An item failed; results that arrived before are cached.
            ValueError: A request is malformed (nothing is sent then).
        """
        requests = list(requests)
        for request in requests:
            self._check_request(request)
        results: List[Any] = [None] * len(requests)
        bar = tqdm(
            total=len(requests),
            desc=f'{self.model} instructions',
            unit='item',
            disable=not self.progress or not requests,
            dynamic_ncols=True)
        pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix='llm-writer')
        try:
            futures = {pool.submit(self._produce, r): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                usage = self.usage
                bar.set_postfix(
                    cached=usage.cache_hits, cost=f'${usage.cost_usd:.3f}', refresh=False)
                bar.update(1)
        finally:
            # On a failure, queued items are dropped; running ones finish and are cached.
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        logger.info(self.summary())
        return results

    @staticmethod
    def _check_request(request: Any) -> None:
        if not isinstance(request, (AttributeRequest, ConditionalRequest)) or not request.item_id:
            raise ValueError(f'not an AttributeRequest/ConditionalRequest with an item_id: '
                             f'{request!r}')
        if isinstance(request, ConditionalRequest) and request.relation not in RELATION_PHRASES:
            raise ValueError(f'{request.item_id}: relation {request.relation!r} is not one of '
                             f'{sorted(RELATION_PHRASES)}')

    def _produce(self, request: Request) -> Result:
        """One item: from the cache, or from the API (then cached at once)."""
        try:
            image = self._image(request.image_path)
        except (OSError, ValueError) as error:
            raise LLMWriterError(f'{request.item_id}: cannot read image '
                                 f'{request.image_path} ({error})') from None
        text = _user_text(request, image)
        params = prompts.request_params(prompts.attribute_response_format() if isinstance(
            request, AttributeRequest) else prompts.conditional_response_format(request.relation))
        key = self._cache_key(text, image, params)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # identical requests of one batch are sent only once
            cached = self._cache.load(key, request)
            if cached is not None:
                with self._lock:
                    self._usage.cache_hits += 1
                return cached
            result, tokens = self._ask(request, prompts.messages(text, image.data_url), params)
            self._cache.store(
                key,
                dict(
                    key=key,
                    item_id=request.item_id,
                    model=self.model,
                    prompt_version=prompts.PROMPT_VERSION,
                    image_sha256=image.sha256,
                    kind=type(result).__name__,
                    result=asdict(result),
                    usage=tokens))
            return result

    def _cache_key(self, text: str, image: EncodedImage, params: Dict[str, Any]) -> str:
        """sha256 of everything that shapes the reply; the image enters by its file's sha256."""
        payload = dict(
            model=self.model,
            prompt_version=prompts.PROMPT_VERSION,
            params=params,
            messages=prompts.messages(text, f'sha256:{image.sha256}'))
        blob = json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
        return hashlib.sha256(blob.encode('utf-8')).hexdigest()

    def _ask(self, request: Request, messages: List[Dict[str, Any]],
             params: Dict[str, Any]) -> Tuple[Result, Dict[str, int]]:
        """Send until a valid reply arrives or the retries are spent."""
        item, problem, wait = request.item_id, '', None
        tokens = dict(prompt_tokens=0, completion_tokens=0)
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self._delay(attempt - 1, wait)
                logger.warning(
                    self._redact(f'{item}: {problem}; retry {attempt}/'
                                 f'{self.max_retries} in {delay:.2f}s'))
                time.sleep(delay)
            wait = None
            try:
                with self._lock:
                    self._usage.requests += 1
                completion = self._client.chat.completions.create(
                    model=self.model, messages=messages, **params)
            except openai.APIStatusError as error:
                status, message = error.status_code, prompts.shorten(error.message, 300)
                if status != 429 and status < 500:
                    raise LLMWriterError(
                        self._redact(
                            f'{item}: HTTP {status} from the chat-completions API (not retried): '
                            f'{message}')) from None
                problem, wait = f'HTTP {status}: {message}', _retry_after(error.response)
                continue
            except openai.APIConnectionError as error:  # timeouts included
                problem = f'{type(error).__name__}: {prompts.shorten(error)}'
                continue
            try:
                return parse_output(self._reply(completion, tokens), request), tokens
            except ValueError as error:
                problem = f'invalid reply: {error}'
        raise LLMWriterError(
            self._redact(f'{item}: no valid reply after {self.max_retries + 1} '
                         f'attempts; last problem: {problem}'))

    def _reply(self, completion: Any, tokens: Dict[str, int]) -> Any:
        """Account the tokens (invalid replies are billed too), then decode the message."""
        usage = getattr(completion, 'usage', None)
        spent = [int(getattr(usage, name, 0) or 0) for name in tokens]
        tokens.update({name: tokens[name] + count for name, count in zip(tokens, spent)})
        with self._lock:
            self._usage.prompt_tokens += spent[0]
            self._usage.completion_tokens += spent[1]
            self._usage.cost_usd += (spent[0] * self.prices[0] + spent[1] * self.prices[1]) / 1e6
        return prompts.decode_reply(completion)

    def _delay(self, retry: int, wait: Optional[float]) -> float:
        if wait is not None:  # the server knows best, but never wait longer than backoff_max
            return min(self.backoff_max, wait)
        ceiling = min(self.backoff_max, self.backoff_base * 2**retry)
        # Jitter keeps workers that failed together from retrying in lockstep.
        return ceiling / 2 + random.uniform(0, ceiling / 2)
