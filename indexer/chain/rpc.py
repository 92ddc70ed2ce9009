"""Async EVM JSON-RPC client: batched, adaptively bounded, retried with jitter, rate-limit aware."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from exporter.metrics import Metrics, default_metrics
from indexer.chain.limiter import AdaptiveLimiter
from indexer.chain.model import BadChainData, Block, check_links, parse_block
from indexer.chain.wire import WireBlock, decode_block_batch, to_block

log = logging.getLogger(__name__)

RATE_LIMIT_CODES = {-32005, -32029, 429}  # codes providers use for "too many requests"
PERMANENT_CODES = {-32601, -32602}  # method not found, invalid params: retrying cannot help


class RpcError(Exception):
    """A JSON-RPC call failed; `retryable` says whether trying again could help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class RateLimited(RpcError):
    """The provider refused the request for rate limiting; wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RpcUnavailable(Exception):
    """Every retry of a request failed; the message carries the last error."""


# Turns a batch answer's body into results in call order (RpcClient._answers is the default).
Decoder = Callable[[bytes, list[int], Sequence[tuple[str, list[Any]]]], list[Any]]


@dataclass(frozen=True)
class RpcSettings:
    batch_size: int = 100
    max_concurrency: int = 16
    timeout_seconds: float = 10.0
    max_retries: int = 8
    backoff_base_seconds: float = 0.1
    backoff_max_seconds: float = 10.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RpcClient:
    """One provider of one chain. Share an instance: its limiter and rate-limit pause are shared."""

    def __init__(
        self,
        url: str,
        chain: str,
        settings: RpcSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.url = url
        self.chain = chain
        self.settings = settings or RpcSettings()
        self.metrics = metrics or default_metrics()
        self.limiter = AdaptiveLimiter(self.settings.max_concurrency)
        self._ids = itertools.count(1)
        self._paused_until = 0.0
        self._session: aiohttp.ClientSession | None = None
        self.metrics.rpc_concurrency_limit.labels(chain).set(self.limiter.limit)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=self.settings.max_concurrency * 2),
            )
        return self._session

    async def _post_once(
        self, calls: Sequence[tuple[str, list[Any]]], decode: Decoder
    ) -> list[Any]:
        """Send one batch; return results in call order or raise an RpcError."""
        ids = [next(self._ids) for _ in calls]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        async with self._http().post(self.url, json=body) as response:
            raw = await response.read()
            if response.status == 429:
                raise RateLimited(
                    f"HTTP 429 from {self.url}",
                    parse_retry_after(response.headers.get("Retry-After")),
                )
            if response.status >= 400:
                raise RpcError(f"HTTP {response.status} from {self.url}: {raw[:200]!r}")
        return decode(raw, ids, calls)

    def _answers(
        self, raw: bytes, ids: list[int], calls: Sequence[tuple[str, list[Any]]]
    ) -> list[Any]:
        """The results of a batch answer in call order; error answers raise an RpcError."""
        try:
            answers = json.loads(raw)
        except ValueError:
            raise RpcError(f"malformed JSON from {self.url}: {raw[:120]!r}") from None
        if isinstance(answers, dict):  # some providers answer a whole batch with one error
            answers = [answers] * len(ids) if "error" in answers else [answers]
        if not isinstance(answers, list):
            raise RpcError(f"unexpected JSON-RPC answer from {self.url}: {raw[:120]!r}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results = []
        for call_id, (method, _) in zip(ids, calls, strict=True):
            answer = by_id.get(call_id) or (answers[0] if len(answers) == 1 == len(ids) else None)
            if answer is None:
                raise RpcError(f"{method}: no answer for id {call_id} from {self.url}")
            error = answer.get("error")
            if error is not None:
                code = error.get("code") if isinstance(error, dict) else None
                message = error.get("message") if isinstance(error, dict) else str(error)
                if code in RATE_LIMIT_CODES or "rate limit" in str(message).lower():
                    raise RateLimited(f"{method}: {message} (code {code})", None)
                raise RpcError(
                    f"{method}: JSON-RPC error {code}: {message}",
                    retryable=code not in PERMANENT_CODES,
                )
            if "result" not in answer:
                raise RpcError(f"{method}: answer without result from {self.url}")
            results.append(answer["result"])
        return results

    def _block_answers(
        self, raw: bytes, ids: list[int], calls: Sequence[tuple[str, list[Any]]]
    ) -> list[Any]:
        """Full blocks as WireBlocks on the fast path; anything unusual goes the careful way."""
        blocks = decode_block_batch(raw, ids)
        return blocks if blocks is not None else self._answers(raw, ids, calls)

    async def _wait_out_pause(self) -> None:
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff, so many clients do not retry in lockstep."""
        ceiling = min(
            self.settings.backoff_max_seconds, self.settings.backoff_base_seconds * 2**attempt
        )
        return random.uniform(0, ceiling)

    async def request(
        self, calls: Sequence[tuple[str, list[Any]]], decode: Decoder | None = None
    ) -> list[Any]:
        """Send a batch with retries; results in call order, or RpcUnavailable."""
        method = calls[0][0] if calls else "none"
        last_error: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            await self._wait_out_pause()
            async with self.limiter:
                started = time.perf_counter()
                try:
                    results = await self._post_once(calls, decode or self._answers)
                except RateLimited as exc:
                    outcome, last_error, wait = "rate_limited", exc, exc.retry_after
                    self.metrics.rate_limited.labels("rpc").inc()
                    self.limiter.on_overload()
                    wait = wait if wait is not None else self._backoff(attempt + 2)
                    self._paused_until = max(self._paused_until, time.monotonic() + wait)
                    log.warning(
                        "rate limited by %s provider, waiting %.2fs",
                        self.chain,
                        wait,
                        extra={"source": "rpc", "chain": self.chain, "wait_seconds": wait},
                    )
                except TimeoutError as exc:
                    outcome, last_error = "timeout", exc
                    self.limiter.on_overload()
                except aiohttp.ClientError as exc:
                    outcome, last_error = "error", exc
                except RpcError as exc:
                    outcome, last_error = "error", exc
                    if not exc.retryable:
                        self._observe(method, outcome, started)
                        raise
                else:
                    self.limiter.on_success()
                    self._observe(method, "ok", started)
                    return results
                self._observe(method, outcome, started)
            if outcome != "rate_limited":
                await asyncio.sleep(self._backoff(attempt))
        raise RpcUnavailable(
            f"{self.chain}: {method} failed after {self.settings.max_retries + 1} attempts; "
            f"last error: {type(last_error).__name__}: {last_error}"
        )

    def _observe(self, method: str, outcome: str, started: float) -> None:
        self.metrics.rpc_requests.labels(self.chain, method, outcome).inc()
        self.metrics.rpc_request_duration.labels(self.chain, method).observe(
            time.perf_counter() - started
        )
        self.metrics.rpc_concurrency_limit.labels(self.chain).set(self.limiter.limit)

    async def call(self, method: str, *params: Any) -> Any:
        return (await self.request([(method, list(params))]))[0]

    async def chain_id(self) -> int:
        return int(await self.call("eth_chainId"), 16)

    async def latest_available_block(self) -> int:
        """The head-1 rule: if block N (eth_blockNumber) cannot be fetched yet, the head is N-1."""
        announced = int(await self.call("eth_blockNumber"), 16)
        block = await self.call("eth_getBlockByNumber", hex(announced), False)
        return announced if block is not None else announced - 1

    async def _fetch_batch(self, numbers: list[int], full: bool) -> list[Any]:
        """One batch of raw blocks (WireBlocks or dicts); null answers are retried."""
        calls = [("eth_getBlockByNumber", [hex(n), full]) for n in numbers]
        decode = self._block_answers if full else None
        last_error: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            raws = await self.request(calls, decode)
            missing = [n for n, raw in zip(numbers, raws, strict=True) if raw is None]
            if not missing:
                return raws
            last_error = BadChainData(f"block {missing[0]}: the provider returned null")
            await asyncio.sleep(self._backoff(attempt))
        raise BadChainData(
            f"{self.chain}: {last_error} (after {self.settings.max_retries + 1} tries)"
        )

    async def get_blocks(self, start: int, end: int) -> list[Block]:
        """Blocks start..end with full transactions, checked to chain through parentHash.

        Block start-1 is fetched too, so the first block's parentHash is checked against the
        provider like every other: stored unchecked, a bad one would make the range before it
        fail its neighbour check (ParentMismatch) forever.
        """
        numbers = list(range(max(start - 1, 0), end + 1))
        size = self.settings.batch_size
        batches = [numbers[i : i + size] for i in range(0, len(numbers), size)]
        raws = await asyncio.gather(*(self._fetch_batch(batch, True) for batch in batches))
        blocks = [
            to_block(raw, number) if isinstance(raw, WireBlock) else parse_block(raw, number)
            for batch, batch_raws in zip(batches, raws, strict=True)
            for number, raw in zip(batch, batch_raws, strict=True)
        ]
        check_links(blocks)
        return blocks[1:] if start > 0 else blocks

    async def get_block_hashes(self, start: int, end: int) -> dict[int, bytes]:
        """Hashes of blocks start..end (headers only), for comparing against what is stored."""
        numbers = list(range(start, end + 1))
        size = self.settings.batch_size
        hashes: dict[int, bytes] = {}
        for i in range(0, len(numbers), size):
            batch = numbers[i : i + size]
            for number, raw in zip(batch, await self._fetch_batch(batch, False), strict=True):
                if not isinstance(raw, dict) or not isinstance(raw.get("hash"), str):
                    raise BadChainData(f"block {number}: header without a hash")
                hashes[number] = bytes.fromhex(raw["hash"][2:])
        return hashes
