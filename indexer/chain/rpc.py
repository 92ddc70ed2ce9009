"""Async EVM JSON-RPC client: batched, adaptively bounded, retried with jitter, rate-limit aware.

The provider is untrusted (DESIGN.md): an answer is read up to a size cap (a batch over it is
split in two), Retry-After is clamped, every answer is checked before it leaves the client
(garbage is counted as `bad_data` and retried), and no message, log line or metric names the
provider by more than scheme://host[:port].
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from exporter.metrics import Metrics, default_metrics
from indexer.chain.budget import count_answer_bytes
from indexer.chain.decoders import (
    Decoder,
    block_receipts_decoder,
    decode_blocks,
    decode_header_hashes,
    decode_quantities,
    transaction_receipts_decoder,
)
from indexer.chain.envelope import results_in_order
from indexer.chain.errors import (
    MAX_RETRY_AFTER_SECONDS,
    MethodNotFound,
    RateLimited,
    ResponseTooLarge,
    RpcError,
    RpcTimeout,
    RpcUnavailable,
    read_retry_after,
)
from indexer.chain.limiter import AdaptiveLimiter, RequestRate
from indexer.chain.model import (
    BadChainData,
    Block,
    Receipt,
    check_links,
    parse_header_hash,
    quantity_field,
    required_data_field,
)
from indexer.chain.receipts import attach_receipts
from indexer.chain.redaction import Redactor
from indexer.config import DEFAULT_PROVIDER, DEFAULT_RPC_MAX_RESPONSE_BYTES

__all__ = ["RateLimited", "RpcClient", "RpcError", "RpcSettings", "RpcUnavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

BLOCK_RECEIPTS = "eth_getBlockReceipts"
TRANSACTION_RECEIPT = "eth_getTransactionReceipt"
RECEIPTS_METHODS = (BLOCK_RECEIPTS, TRANSACTION_RECEIPT)
# The `method` label of the RPC metrics: the methods this client sends, anything else "other",
# so a caller of `call()` cannot grow the series without bound.
METRIC_METHODS = frozenset(
    {"eth_chainId", "eth_blockNumber", "eth_getBlockByNumber", *RECEIPTS_METHODS}
)
# Receipts batches are cut by the bytes their answers may take, not only by rpc_batch_size:
# a receipt is ~1 KB before its logs (its logsBloom alone is 514 characters) and a log ~0.6 KB,
# so a mainnet block's receipts (150 transactions, ~2 logs each) take ~300 KB, and 100 of them
# would be most of the default 64 MiB cap. An answer over the cap is read up to it, thrown
# away and asked again in halves; planning for 4 KiB per receipt within a quarter of the cap
# keeps that for outliers.
RECEIPT_BYTES_ESTIMATE = 4096
RECEIPTS_CAP_SHARE = 4
LATENCY_SMOOTHING = 0.2  # weight of the newest answer in `latency`
READ_CHUNK_BYTES = 256 * 1024  # decoded bytes read at a time, so the cap is checked as they come
ERROR_BODY_BYTES = 64 * 1024  # enough of an error page to quote its start


@dataclass(frozen=True)
class RpcSettings:
    batch_size: int = 100
    max_concurrency: int = 16
    timeout_seconds: float = 10.0
    max_retries: int = 8
    backoff_base_seconds: float = 0.1
    backoff_max_seconds: float = 10.0
    max_response_bytes: int = DEFAULT_RPC_MAX_RESPONSE_BYTES
    max_retry_after_seconds: float = MAX_RETRY_AFTER_SECONDS
    # This worker's share of the provider's max_requests_per_second; None: no fixed limit.
    max_requests_per_second: float | None = None


async def _all(requests: Iterable[Awaitable[T]]) -> list[T]:
    """Await them all, then raise the first failure (a MethodNotFound first: it decides what
    happens next). Unlike a bare gather, no batch is left running after its sibling failed."""
    results = await asyncio.gather(*requests, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        raise next((f for f in failures if isinstance(f, MethodNotFound)), failures[0])
    return results  # type: ignore[return-value]


class RpcClient:
    """One provider of one chain. Share an instance: its limiter and rate-limit pause are shared."""

    labels_metrics = True  # False for ProviderSet, which sends nothing itself

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
        # eth_getBlockReceipts until the provider answers that it lacks it, then for good
        # eth_getTransactionReceipt: detected once per client, shown in a metric.
        self.receipts_method = BLOCK_RECEIPTS
        self._receipts_method_known = False
        self._receipts_probe = asyncio.Lock()  # one batch finds out; the others wait for it
        if self.labels_metrics:
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

    async def _post_once(
        self, calls: Sequence[tuple[str, list[Any]]], decode: Decoder
    ) -> list[Any]:
        """Send one batch; return results in call order or raise an RpcError or BadChainData."""
        ids = [next(self._ids) for _ in calls]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        return decode(await self._exchange(body), ids, calls, self.redact)

    async def _exchange(self, body: list[dict[str, Any]]) -> bytes:
        """POST a batch and read its answer. Every failure is an RpcError safe to show.

        aiohttp's exceptions spell out the whole URL, key included ("Connection timeout to host
        http://…/v3/KEY"), so none of them leaves here, not even as __context__: the RpcError
        replacing it is raised after the handler.
        """
        try:
            async with self._http().post(self.url, json=body) as response:
                answer = await self._read(response)
                count_answer_bytes(len(answer))
                return answer
        except TimeoutError:
            failure: RpcError = RpcTimeout(
                f"no answer from {self.redact.public} within {self.settings.timeout_seconds}s"
            )
        except aiohttp.ClientError as exc:
            failure = RpcError(
                f"{type(exc).__name__} from {self.redact.public}: {self.redact.scrub(str(exc))}"
            )
        raise failure

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The answer's body, at most max_response_bytes once decompressed, or an RpcError."""
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
        body = await self._read_capped(response, self.settings.max_response_bytes)
        if body is None:
            raise ResponseTooLarge(
                f"the answer from {public} passed {self.settings.max_response_bytes} bytes"
                " (rpc_max_response_bytes)"
            )
        return body

    @staticmethod
    async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes | None:
        """The decoded body, or None as soon as it passes `cap` bytes.

        aiohttp decompresses as it reads, in bounded steps: stopping here stops a gzip bomb
        (200 KiB on the wire, 200 MiB decoded) at the cap, where read() would hold it all.
        """
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def paused_for(self) -> float:
        """Seconds left of a rate-limit pause (Retry-After), 0 when none."""
        return max(0.0, self._paused_until - time.monotonic())

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
        """Send a batch with retries; results in call order, RpcUnavailable or BadChainData.

        A batch whose answer passes max_response_bytes is split in two, down to single calls;
        a single call over it is bad data.
        """
        try:
            return await self._attempts(calls, decode or results_in_order)
        except ResponseTooLarge:
            pass  # split outside the handler, so what the halves raise is not chained to it
        half = len(calls) // 2
        return await self.request(calls[:half], decode) + await self.request(calls[half:], decode)

    async def _attempts(self, calls: Sequence[tuple[str, list[Any]]], decode: Decoder) -> list[Any]:
        """The retry loop of `request`; ResponseTooLarge leaves it at once for batches of two+."""
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
                    results = await self._post_once(calls, decode)
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
                    return results
                self._observe(label, outcome, started)
            if outcome != "rate_limited" and attempt < self.settings.max_retries:
                await asyncio.sleep(self._backoff(attempt))
        message = (
            f"{self.chain}: {method} failed after {self.settings.max_retries + 1} attempts; "
            f"last error: {type(last_error).__name__}: {last_error}"
        )
        if isinstance(last_error, BadChainData | ResponseTooLarge):
            raise BadChainData(message)
        raise RpcUnavailable(message, last_error)

    def _pause(self, retry_after: float | None, attempt: int) -> None:
        """Pause every request of this client: Retry-After (clamped), else a backoff."""
        self.metrics.rate_limited.labels("rpc").inc()
        self.limiter.on_overload()
        if self.rate is not None:
            self.rate.on_throttled()
        wait = retry_after if retry_after is not None else self._backoff(attempt + 2)
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
        self.metrics.rpc_request_duration.labels(self.chain, self.provider, method).observe(seconds)
        self.metrics.rpc_concurrency_limit.labels(self.chain, self.provider).set(self.limiter.limit)

    async def call(self, method: str, *params: Any) -> Any:
        return (await self.request([(method, list(params))]))[0]

    async def chain_id(self) -> int:
        return int((await self.request([("eth_chainId", [])], decode_quantities))[0])

    async def latest_available_block(self) -> int:
        """The head-1 rule: if block N (eth_blockNumber) cannot be fetched yet, the head is N-1."""
        return (await self.latest_available_head())[0]

    async def _fetch_batch(self, numbers: list[int], full: bool) -> list[Any]:
        """One batch of checked blocks (full) or header hashes; null answers are retried."""
        calls = [("eth_getBlockByNumber", [hex(n), full]) for n in numbers]
        decode = decode_blocks if full else decode_header_hashes
        last_error: Exception | None = None
        for attempt in range(self.settings.max_retries + 1):
            results = await self.request(calls, decode)
            missing = [n for n, result in zip(numbers, results, strict=True) if result is None]
            if not missing:
                return results
            last_error = BadChainData(f"block {missing[0]}: the provider returned null")
            await asyncio.sleep(self._backoff(attempt))
        raise BadChainData(
            f"{self.chain}: {last_error} (after {self.settings.max_retries + 1} tries)"
        )

    async def get_blocks(self, start: int, end: int, *, receipts: bool = False) -> list[Block]:
        """Blocks start..end with full transactions, checked to chain through parentHash.

        Block start-1 is fetched too, so the first block's parentHash is checked against the
        provider like every other: stored unchecked, a bad one would make the range before it
        fail its neighbour check (ParentMismatch) forever. With `receipts`, every transaction
        of blocks start..end gets its receipt, checked against its block; each batch of blocks
        asks for its receipts as soon as it has arrived.
        """
        numbers = list(range(max(start - 1, 0), end + 1))
        size = self.settings.batch_size
        batches = [numbers[i : i + size] for i in range(0, len(numbers), size)]

        async def fetch(batch: list[int]) -> list[Block]:
            blocks: list[Block] = await self._fetch_batch(batch, True)
            if receipts:
                await self._fetch_receipts([block for block in blocks if block.number >= start])
            return blocks

        fetched = await asyncio.gather(*(fetch(batch) for batch in batches))
        blocks: list[Block] = [block for batch_blocks in fetched for block in batch_blocks]
        check_links(blocks)
        return blocks[1:] if start > 0 else blocks

    async def get_blocks_batch(
        self, start: int, end: int, *, receipts: bool = False, previous: Block | None = None
    ) -> list[Block]:
        """Blocks start..end as get_blocks fetches them, one batch of a range streamed in parts.

        `previous` is block start-1 as the batch before this one fetched it: the first block's
        parentHash is checked against it instead of against a fresh fetch of start-1, so the
        parent links of a range hold across its batches without asking for any block twice.
        """
        if previous is None:
            return await self.get_blocks(start, end, receipts=receipts)
        if previous.number != start - 1:
            raise ValueError(f"previous is block {previous.number}, not {start - 1}")
        numbers = list(range(start, end + 1))
        size = self.settings.batch_size

        async def fetch(batch: list[int]) -> list[Block]:
            blocks: list[Block] = await self._fetch_batch(batch, True)
            if receipts:
                await self._fetch_receipts(blocks)
            return blocks

        fetched = await asyncio.gather(
            *(fetch(numbers[i : i + size]) for i in range(0, len(numbers), size))
        )
        blocks = [block for batch_blocks in fetched for block in batch_blocks]
        check_links([previous, *blocks])
        return blocks

    async def _fetch_receipts(self, blocks: list[Block]) -> None:
        """Attach every transaction's receipt, by the method this provider serves.

        Until that is known, one batch at a time asks: batches fetched side by side would
        otherwise each find out on their own that eth_getBlockReceipts is missing.
        """
        blocks = [block for block in blocks if block.transactions]  # nothing to ask for
        if not blocks:
            return
        if not self._receipts_method_known:
            async with self._receipts_probe:
                if not self._receipts_method_known:
                    await self._receipts_by_any_method(blocks)
                    return
        await self._receipts_by_any_method(blocks)

    async def _receipts_by_any_method(self, blocks: list[Block]) -> None:
        if self.receipts_method == BLOCK_RECEIPTS:
            try:
                await self._block_receipts(blocks)
            except MethodNotFound as exc:
                self._fall_back(exc)
            else:
                self._show_receipts_method()
                return
        await self._transaction_receipts(blocks)
        self._show_receipts_method()

    def _receipt_batches(self, blocks: list[Block]) -> list[list[Block]]:
        """Blocks in batches of at most batch_size calls and a share of the response cap."""
        budget = self.settings.max_response_bytes // RECEIPTS_CAP_SHARE
        batches: list[list[Block]] = []
        answer = 0
        for block in blocks:
            cost = RECEIPT_BYTES_ESTIMATE * len(block.transactions)
            if batches and len(batches[-1]) < self.settings.batch_size and answer + cost <= budget:
                batches[-1].append(block)
                answer += cost
            else:
                batches.append([block])
                answer = cost
        return batches

    async def _block_receipts(self, blocks: list[Block]) -> None:
        async def fetch(batch: list[Block]) -> None:
            calls = [(BLOCK_RECEIPTS, [hex(block.number)]) for block in batch]
            answers = await self.request(calls, block_receipts_decoder(batch))
            for block, receipts in zip(batch, answers, strict=True):
                attach_receipts(block, receipts)

        await _all(fetch(batch) for batch in self._receipt_batches(blocks))

    async def _transaction_receipts(self, blocks: list[Block]) -> None:
        """One eth_getTransactionReceipt per transaction, batched up to batch_size calls."""
        blocks = [block for block in blocks if block.transactions[0].receipt is None]
        calls = [(TRANSACTION_RECEIPT, ["0x" + tx.hash]) for b in blocks for tx in b.transactions]
        size = self.settings.batch_size
        decode = transaction_receipts_decoder(blocks)
        answers = await _all(
            self.request(calls[i : i + size], decode) for i in range(0, len(calls), size)
        )
        receipts: list[Receipt] = [receipt for batch in answers for receipt in batch]
        first = 0
        for block in blocks:
            count = len(block.transactions)
            attach_receipts(block, receipts[first : first + count])  # log order across the block
            first += count

    def _fall_back(self, error: MethodNotFound) -> None:
        if self.receipts_method == TRANSACTION_RECEIPT:
            return  # another batch already found out
        self.receipts_method = TRANSACTION_RECEIPT
        self._receipts_method_known = False
        log.warning(
            "%s provider lacks %s (%s): fetching receipts with %s from now on",
            self.chain,
            BLOCK_RECEIPTS,
            error,
            TRANSACTION_RECEIPT,
            extra={"source": "rpc", "chain": self.chain, "method": TRANSACTION_RECEIPT},
        )
        self._show_receipts_method()

    def _show_receipts_method(self) -> None:
        if self._receipts_method_known:
            return
        for method in RECEIPTS_METHODS:
            in_use = 1 if method == self.receipts_method else 0
            self.metrics.rpc_receipts_method.labels(self.chain, method).set(in_use)
        self._receipts_method_known = True

    async def get_block_hashes(self, start: int, end: int) -> dict[int, bytes]:
        """Hashes of blocks start..end (headers only), for comparing against what is stored."""
        numbers = list(range(start, end + 1))
        size = self.settings.batch_size
        hashes: dict[int, bytes] = {}
        for i in range(0, len(numbers), size):
            batch = numbers[i : i + size]
            for number, digest in zip(batch, await self._fetch_batch(batch, False), strict=True):
                hashes[number] = bytes.fromhex(digest)
        return hashes

    async def latest_available_head(self) -> tuple[int, bytes | None]:
        """latest_available_block and the head's hash, from the same two calls (the reorg check
        needs no other header when nothing changed): the hash is None when the head-1 rule
        applied (block N-1's header was not fetched)."""
        announced = int((await self.request([("eth_blockNumber", [])], decode_quantities))[0])
        call = ("eth_getBlockByNumber", [hex(announced), False])
        header = (await self.request([call], decode_header_hashes))[0]
        return (announced, bytes.fromhex(header)) if header is not None else (announced - 1, None)

    async def tagged_block(self, tag: str) -> int | None:
        """The number of the node's `tag` block ("finalized", "safe"), or None when it has
        none: a null answer, or the tag refused with a permanent JSON-RPC error."""
        call = ("eth_getBlockByNumber", [tag, False])
        try:
            header = (await self.request([call], _decode_tagged_numbers))[0]
        except RpcError as exc:
            if exc.retryable:
                raise
            return None
        return header

    async def get_header_links(self, start: int, end: int) -> dict[int, tuple[bytes, bytes]]:
        """(hash, parentHash) of blocks start..end, headers only: whether new blocks extend the
        ones checked before."""
        numbers = list(range(start, end + 1))
        size = self.settings.batch_size
        links: dict[int, tuple[bytes, bytes]] = {}
        for i in range(0, len(numbers), size):
            batch = numbers[i : i + size]
            calls = [("eth_getBlockByNumber", [hex(n), False]) for n in batch]
            answers = await self.request(calls, _decode_header_links)
            for number, link in zip(batch, answers, strict=True):
                if link is None:
                    raise BadChainData(f"block {number}: the provider returned null")
                links[number] = link
        return links


def _decode_tagged_numbers(
    raw: bytes, ids: list[int], calls: Sequence[tuple[str, list[Any]]], redact: Redactor
) -> list[int | None]:
    """The block number of each tagged header; a null (no such block) stays None."""
    results = results_in_order(raw, ids, calls, redact)
    numbers: list[int | None] = []
    for result, (_, params) in zip(results, calls, strict=True):
        if result is not None and not isinstance(result, dict):
            raise BadChainData(f"the {params[0]} block is not a block object")
        numbers.append(
            None
            if result is None
            else quantity_field(result, "number", f"the {params[0]} block", "int64", required=True)
        )
    return numbers


def _decode_header_links(
    raw: bytes, ids: list[int], calls: Sequence[tuple[str, list[Any]]], redact: Redactor
) -> list[tuple[bytes, bytes] | None]:
    """(hash, parentHash) of each header-only block, checked; a null stays None."""
    results = results_in_order(raw, ids, calls, redact)
    links: list[tuple[bytes, bytes] | None] = []
    for result, (_, params) in zip(results, calls, strict=True):
        if result is None:
            links.append(None)
            continue
        number = int(params[0], 16)
        where = f"block {number}"
        block_hash = parse_header_hash(result, number)
        parent = required_data_field(result, "parentHash", where, 32)
        links.append((bytes.fromhex(block_hash), bytes.fromhex(parent)))
    return links
