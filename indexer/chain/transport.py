"""One provider's JSON-RPC transport: batches over HTTP, adaptively bounded, retried with jitter,
rate-limit aware.

The provider is untrusted (DESIGN.md): an answer is read up to a size cap (a batch over it is
split in two), Retry-After is clamped, every answer is decoded and checked before it leaves the
transport (garbage is counted as `bad_data` and retried), and no message, log line or metric
names the provider by more than scheme://host[:port].
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import cast

import aiohttp
import msgspec

from exporter.metrics import Metrics, default_metrics
from indexer.chain.answer_room import ReadRoom, answer_room
from indexer.chain.decoders import Calls, Decoder, decode_header_hashes, decode_quantities
from indexer.chain.envelope import results_in_order
from indexer.chain.errors import (
    RateLimited,
    ResponseTooLarge,
    RpcError,
    RpcTimeout,
    RpcUnavailable,
    read_retry_after,
)
from indexer.chain.limiter import AdaptiveLimiter, RequestRate
from indexer.chain.model import BadChainData
from indexer.chain.redaction import Redactor
from indexer.chain.sender import Answer, RpcSettings, backoff_seconds
from indexer.config import DEFAULT_PROVIDER

log = logging.getLogger(__name__)

BLOCK_RECEIPTS = "eth_getBlockReceipts"
TRANSACTION_RECEIPT = "eth_getTransactionReceipt"
RECEIPTS_METHODS = (BLOCK_RECEIPTS, TRANSACTION_RECEIPT)
# The `method` label of the RPC metrics: the methods the indexer sends, anything else "other",
# so a caller of `Fetcher.call()` cannot grow the series without bound.
METRIC_METHODS = frozenset(
    {"eth_chainId", "eth_blockNumber", "eth_getBlockByNumber", *RECEIPTS_METHODS}
)
LATENCY_SMOOTHING = 0.2  # weight of the newest answer in `latency`
READ_CHUNK_BYTES = 256 * 1024  # decoded bytes read at a time, so the cap is checked as they come
ERROR_BODY_BYTES = 64 * 1024  # enough of an error page to quote its start
JSON_BODY = {"Content-Type": "application/json"}


class Transport:
    """One provider of one chain. Share an instance: its limiter and rate-limit pause are shared."""

    def __init__(
        self,
        url: str,
        chain: str,
        settings: RpcSettings | None = None,
        metrics: Metrics | None = None,
        provider: str = DEFAULT_PROVIDER,
    ) -> None:
        self.url = url  # the stored config's URL, key included: only ever sent to the provider
        self.redact = Redactor(url)
        self.chain = chain
        self.provider = provider  # the configured name: the metrics' `provider` label
        self.settings = settings or RpcSettings()
        self.metrics = metrics or default_metrics()
        self.limiter = AdaptiveLimiter(self.settings.max_concurrency)
        self.latency = 0.05  # moving average of answered requests, seconds (routing reads it)
        rate = self.settings.max_requests_per_second
        self.rate = RequestRate(rate) if rate is not None else None
        self._ids = itertools.count(1)
        self._paused_until = 0.0
        self._session: aiohttp.ClientSession | None = None
        self.metrics.rpc_concurrency_limit.labels(chain, provider).set(self.limiter.limit)

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

    async def _post_once(self, calls: Calls, decode: Decoder) -> Answer:
        """Send one batch; its results in call order, or an RpcError or BadChainData."""
        ids = [next(self._ids) for _ in calls]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        room = answer_room.get()
        read = room.read() if room is not None else None
        try:
            raw = await self._exchange(body, read)
            return Answer(decode(raw, ids, calls, self.redact), len(raw))
        finally:
            if read is not None:
                read.give_back()

    async def _exchange(self, body: list[dict[str, object]], read: ReadRoom | None) -> bytes:
        """POST a batch and read its answer. Every failure is an RpcError safe to show.

        aiohttp's exceptions spell out the whole URL, key included ("Connection timeout to host
        http://…/v3/KEY"), so none of them leaves here, not even as __context__: the RpcError
        replacing it is raised after the handler.
        """
        try:
            # msgspec, not aiohttp's json.dumps (1.3 % of a worker's CPU on a 3-tx backlog).
            data = msgspec.json.encode(body)
            async with self._http().post(self.url, data=data, headers=JSON_BODY) as response:
                return await self._read(response, read)
        except TimeoutError:
            failure: RpcError = RpcTimeout(
                f"no answer from {self.redact.public} within {self.settings.timeout_seconds}s"
            )
        except aiohttp.ClientError as exc:
            failure = RpcError(
                f"{type(exc).__name__} from {self.redact.public}: {self.redact.scrub(str(exc))}"
            )
        raise failure

    async def _read(self, response: aiohttp.ClientResponse, read: ReadRoom | None) -> bytes:
        """The answer's body, at most max_response_bytes once decompressed, or an RpcError;
        each chunk kept only once `read` has room for it."""
        public = self.redact.public
        if response.status == 429:
            wait, clamped = read_retry_after(
                response.headers.get("Retry-After"), self.settings.max_retry_after_seconds
            )
            if clamped:
                self.metrics.rpc_retry_after_clamped.labels(self.chain, self.provider).inc()
            raise RateLimited(f"HTTP 429 from {public}", wait)
        if response.status >= 400:
            page = await self._read_capped(response, ERROR_BODY_BYTES)
            shown = (
                f"a body over {ERROR_BODY_BYTES} bytes"
                if page is None
                else self.redact.snippet(page)
            )
            raise RpcError(f"HTTP {response.status} from {public}: {shown}")
        body = await self._read_capped(response, self.settings.max_response_bytes, read)
        if body is None:
            raise ResponseTooLarge(
                f"the answer from {public} passed {self.settings.max_response_bytes} bytes"
                " (rpc_max_response_bytes)"
            )
        return body

    @staticmethod
    async def _read_capped(
        response: aiohttp.ClientResponse, cap: int, read: ReadRoom | None = None
    ) -> bytes | None:
        """The decoded body, or None as soon as it passes `cap` bytes.

        aiohttp decompresses as it reads, in bounded steps: stopping here stops a gzip bomb
        (200 KiB on the wire, 200 MiB decoded) at the cap, where read() would hold it all. The
        body is read into one buffer (chunks and their joined copy would hold it twice), each
        chunk only once `read` (the worker's budget) has room for it; an uncompressed body of
        known length takes its room and its buffer at once, so the buffer is never copied to
        grow (the allocator's copy of a growing buffer is the join again).
        """
        length = None if response.headers.get("Content-Encoding") else response.content_length
        if length is not None:
            if length > cap:
                return None
            if read is not None:
                await read.take(length)
            return cast(bytes, await Transport._read_exactly(response, length))
        body = bytearray()
        async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
            if len(body) + len(chunk) > cap:
                return None
            if read is not None:
                await read.take(len(chunk))
            body += chunk
        # Handed on as it is: bytes(body) would copy up to a cap, and the decoders (json,
        # msgspec, the scrubber) read a bytearray as they read bytes.
        return cast(bytes, body)

    @staticmethod
    async def _read_exactly(response: aiohttp.ClientResponse, length: int) -> bytearray:
        """A body of `length` bytes (Content-Length) into a buffer allocated once; aiohttp reads no
        more than that and fails (ClientPayloadError) on less."""
        body = bytearray(length)
        filled = 0
        with memoryview(body) as view:
            async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                view[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
        del body[filled:]  # a connection closed early: what came
        return body

    def paused_for(self) -> float:
        """Seconds left of a rate-limit pause (Retry-After), 0 when none."""
        return max(0.0, self._paused_until - time.monotonic())

    async def _wait_out_pause(self) -> None:
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def send(self, calls: Calls, decode: Decoder = results_in_order) -> Answer:
        """Send a batch with retries: results in call order, RpcUnavailable or BadChainData.

        A batch whose answer passes max_response_bytes is split in two, down to single calls;
        a single call over it is bad data.
        """
        try:
            return await self._attempts(calls, decode)
        except ResponseTooLarge:
            pass  # split outside the handler, so what the halves raise is not chained to it
        half = len(calls) // 2
        return await self.send(calls[:half], decode) + await self.send(calls[half:], decode)

    async def _attempts(self, calls: Calls, decode: Decoder) -> Answer:
        """The retry loop of `send`; ResponseTooLarge leaves it at once for batches of two+."""
        method = calls[0][0] if calls else "none"
        label = method if method in METRIC_METHODS else "other"
        last_error: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            await self._wait_out_pause()
            async with self.limiter:
                if self.rate is not None:  # spaced after the queue, so they leave spaced
                    await self.rate.acquire()
                started = time.perf_counter()
                try:
                    answer = await self._post_once(calls, decode)
                except RateLimited as exc:
                    outcome, last_error = "rate_limited", exc
                    self._pause(exc.retry_after, attempt)
                except RpcTimeout as exc:
                    outcome, last_error = "timeout", exc
                    self.limiter.on_overload()
                except ResponseTooLarge as exc:
                    outcome, last_error = "too_large", exc
                    if len(calls) > 1:
                        self._observe(label, outcome, started)
                        raise
                except BadChainData as exc:
                    outcome, last_error = "bad_data", exc
                except RpcError as exc:
                    outcome, last_error = "error", exc
                    if not exc.retryable:
                        self._observe(label, outcome, started)
                        raise
                else:
                    self.limiter.on_success()
                    self._observe(label, "ok", started)
                    return answer
                self._observe(label, outcome, started)
            if outcome != "rate_limited" and attempt < self.settings.max_retries:
                await asyncio.sleep(backoff_seconds(self.settings, attempt))
        message = (
            f"{self.chain}: {method} failed after {self.settings.max_retries + 1} attempts; "
            f"last error: {type(last_error).__name__}: {last_error}"
        )
        if isinstance(last_error, BadChainData | ResponseTooLarge):
            raise BadChainData(message)
        raise RpcUnavailable(message, last_error)

    def _pause(self, retry_after: float | None, attempt: int) -> None:
        """Pause every request of this provider: Retry-After (clamped), else a backoff."""
        self.metrics.rate_limited.labels("rpc").inc()
        self.limiter.on_overload()
        if self.rate is not None:
            self.rate.on_throttled()
        wait = (
            retry_after if retry_after is not None else backoff_seconds(self.settings, attempt + 2)
        )
        wait = min(wait, self.settings.max_retry_after_seconds)
        self._paused_until = max(self._paused_until, time.monotonic() + wait)
        log.warning(
            "rate limited by %s provider, waiting %.2fs",
            self.chain,
            wait,
            extra={"source": "rpc", "chain": self.chain, "wait_seconds": wait},
        )

    def _observe(self, method: str, outcome: str, started: float) -> None:
        seconds = time.perf_counter() - started
        if outcome == "ok":
            self.latency += LATENCY_SMOOTHING * (seconds - self.latency)
        self.metrics.rpc_requests.labels(self.chain, self.provider, method, outcome).inc()
        self.metrics.rpc_request_duration.labels(self.chain, self.provider).observe(seconds)
        self.metrics.rpc_concurrency_limit.labels(self.chain, self.provider).set(self.limiter.limit)

    async def latest_available_head(self) -> tuple[int, bytes | None]:
        """The head-1 rule: if block N (eth_blockNumber) cannot be fetched yet, the head is N-1.
        With it the head's hash, from the same two calls (the reorg check needs no other header
        when nothing changed): None when the head-1 rule applied."""
        announced = int((await self.send([("eth_blockNumber", [])], decode_quantities)).results[0])
        call = ("eth_getBlockByNumber", [hex(announced), False])
        header = (await self.send([call], decode_header_hashes)).results[0]
        return (announced, bytes.fromhex(header)) if header is not None else (announced - 1, None)

    async def ask_each(self, calls: Calls, decode: Decoder) -> dict[str, Answer | None]:
        """The batch from this one provider, as Router.ask_each answers for several."""
        try:
            return {self.provider: await self.send(calls, decode)}
        except (RpcError, RpcUnavailable, BadChainData):
            return {self.provider: None}

    async def pinned_chain_id(self) -> int:
        """This provider's chain id (one provider has nobody to be checked against)."""
        return int((await self.send([("eth_chainId", [])], decode_quantities)).results[0])
