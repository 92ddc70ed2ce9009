"""Several providers of one chain behind one Sender: routed by score, failed over, rate limited.

Each provider has its own Transport (its adaptive limiter, Retry-After pause, request rate and
session); the `Router` hands each batch to one of them. The fetcher above (fetcher.py) sends
through either, so get_blocks, receipts, header hashes and any fetch added later are routed
without knowing it.

A batch goes to a healthy provider picked at random in proportion to its score (weight over
recent latency, cut by its recent failures and 429s and by lagging); one that fails, is
throttled or times out is sent to another provider at once. A provider that fails
CIRCUIT_FAILURES batches in a row is taken out (its circuit opens) and gets one probe batch
after a cool-down that doubles while probes fail. A provider whose head is known is never asked
for a block above it while another provider has that block.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.metrics import Metrics, default_metrics
from indexer.chain.decoders import Calls, Decoder
from indexer.chain.errors import MethodNotFound, RateLimited, RpcError, RpcUnavailable
from indexer.chain.model import BadChainData
from indexer.chain.sender import Answer, RpcSettings, backoff_seconds
from indexer.chain.transport import Transport
from indexer.config import ProviderConfig

log = logging.getLogger(__name__)

CIRCUIT_FAILURES = 3  # batches failed in a row that take a provider out
CIRCUIT_COOLDOWN_SECONDS = 5.0  # before the first probe; doubles while probes fail
CIRCUIT_COOLDOWN_MAX_SECONDS = 30.0  # a provider that is back gets traffic within this
HEAD_TTL_SECONDS = 30.0  # a provider's head, from a head scan or a null answer, is this fresh
QUEUE_SECONDS = 0.25  # a batch may wait this long for a provider's rate before going elsewhere
SMOOTHING = 0.2  # weight of the newest batch in the moving average of failures
LAGGING_SCORE = 0.05  # a provider behind by more than its max_head_lag gets 1/20 of its share
# Methods whose first parameter is a block number: a provider is not asked for one above its head.
BLOCK_METHODS = frozenset({"eth_getBlockByNumber", "eth_getBlockReceipts"})


@dataclass
class Provider:
    """One provider and what the router has seen of it."""

    config: ProviderConfig
    transport: Transport
    lacks: set[str] = field(default_factory=set)
    pending: int = 0  # batches handed to it and not answered yet, queued ones included
    failure_rate: float = 0.0  # moving average of failed (0/1) batches, 429s included
    failures_in_a_row: int = 0
    open_until: float | None = None  # circuit open until then; None: closed
    cooldown: float = CIRCUIT_COOLDOWN_SECONDS
    probing: bool = False
    head: int | None = None
    head_at: float = float("-inf")  # when `head` was learned (a head scan, or a null answer)
    lag: int = 0

    @property
    def name(self) -> str:
        return self.config.name

    def is_open(self) -> bool:
        return self.open_until is not None

    def may_probe(self, now: float) -> bool:
        return self.open_until is not None and now >= self.open_until and not self.probing

    def known_head(self, now: float) -> int | None:
        """Its head if learned within HEAD_TTL_SECONDS: a worker without head scans relearns."""
        return self.head if now - self.head_at <= HEAD_TTL_SECONDS else None

    def learn_head(self, head: int, lower_only: bool = False) -> None:
        """Remember its head; a null answer (`lower_only`) only ever lowers a fresh one, as
        answers to batches sent side by side come back in any order."""
        now = time.monotonic()
        known = self.known_head(now)
        if lower_only and known is not None:
            head = min(head, known)
        self.head, self.head_at = head, now

    def lagging(self) -> bool:
        return self.lag > self.config.max_head_lag

    def score(self) -> float:
        latency = max(self.transport.latency, 0.001)  # of its HTTP requests, not of their queue
        score = self.config.weight / latency / (1.0 + 10.0 * self.failure_rate)
        return score * LAGGING_SCORE if self.lagging() else score

    def busy_for(self) -> float:
        """Seconds before this provider could send: a Retry-After pause or its request rate."""
        rate = self.transport.rate.wait_seconds() if self.transport.rate is not None else 0.0
        return max(self.transport.paused_for(), rate)

    def ready(self) -> bool:
        """Free to send soon: not paused, its rate's next slot near, a request slot free."""
        return self.busy_for() <= QUEUE_SECONDS and self.pending < self.transport.limiter.limit


def _highest_block(calls: Calls) -> int | None:
    """The highest block number a batch asks for by number, None if it asks for none."""
    highest = None
    for method, params in calls:
        if method in BLOCK_METHODS and params and isinstance(params[0], str):
            try:
                number = int(params[0], 16)
            except ValueError:
                continue  # a tag such as "latest"
            highest = number if highest is None else max(highest, number)
    return highest


def _null_blocks(calls: Calls, results: Sequence[Any]) -> list[int]:
    """Numbers of the blocks asked by number that came back null (not available there yet)."""
    return [
        int(params[0], 16)
        for (method, params), result in zip(calls, results, strict=True)
        if result is None and method == "eth_getBlockByNumber" and params
        if isinstance(params[0], str) and params[0].startswith("0x")
    ]


class Router:
    """A chain's providers as one Sender; one Transport per provider underneath."""

    def __init__(
        self,
        chain: str,
        providers: Sequence[tuple[ProviderConfig, RpcSettings]],
        settings: RpcSettings,
        metrics: Metrics | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a chain needs at least one provider")
        metrics = metrics or default_metrics()
        self.chain = chain
        self.settings = settings  # the router's own retries; each provider has its own
        self.metrics = metrics
        self.providers = [
            Provider(
                config,
                Transport(config.url, chain, own, metrics, provider=config.name),
                lacks=set(config.unsupported_methods),
            )
            for config, own in providers
        ]
        for provider in self.providers:
            metrics.touch_provider(chain, provider.name)
            metrics.provider_up.labels(chain, provider.name).set(1)
            metrics.provider_head_lag.labels(chain, provider.name).set(0)
            rate = provider.transport.rate
            metrics.provider_rate_limit.labels(chain, provider.name).set(rate.rate if rate else 0)

    async def close(self) -> None:
        for provider in self.providers:
            await provider.transport.close()

    # --- routing --------------------------------------------------------------------------

    def _candidates(self, calls: Calls, tried: set[str]) -> list[Provider]:
        """Providers that could answer this batch now, best-suited first in no order."""
        methods = {method for method, _ in calls}
        able = [p for p in self.providers if not (methods & p.lacks) and p.name not in tried]
        highest = _highest_block(calls)
        now = time.monotonic()
        if highest is not None:
            having = [p for p in able if (head := p.known_head(now)) is None or head >= highest]
            able = having or able  # nobody known to have it: heads may be stale, ask anyway
        probes = [p for p in able if p.may_probe(now)]
        if probes:
            return probes[:1]  # a provider out of rotation gets this batch as its probe
        closed = [p for p in able if not p.is_open()]
        if closed:
            return closed
        return able  # every one is out: try them anyway rather than stop the chain

    def _pick(self, candidates: list[Provider]) -> Provider:
        ready = [p for p in candidates if p.ready()] or [
            min(candidates, key=lambda p: (p.busy_for(), p.pending / p.transport.limiter.limit))
        ]
        if len(ready) == 1:
            return ready[0]
        return random.choices(ready, weights=[p.score() for p in ready])[0]

    async def send(self, calls: Calls, decode: Decoder) -> Answer:
        """Send a batch to one provider, then to the others while it fails."""
        if len(self.providers) == 1:
            return await self._one(self.providers[0], calls, decode)
        methods = {method for method, _ in calls}
        tried: set[str] = set()
        last_error: Exception | None = None
        partial: Answer | None = None  # an answer with null blocks, if nothing better comes
        attempts = max(self.settings.max_retries + 1, len(self.providers))
        for attempt in range(attempts):
            if all(methods & p.lacks for p in self.providers):
                break  # nobody serves it: the caller may fall back to another method
            candidates = self._candidates(calls, tried)
            if not candidates:
                tried.clear()  # every provider failed this batch once: back off, go round again
                await asyncio.sleep(backoff_seconds(self.settings, attempt))
                continue
            provider = self._pick(candidates)
            tried.add(provider.name)
            try:
                answer = await self._one(provider, calls, decode)
            except MethodNotFound as exc:
                last_error = exc
                provider.lacks.update(methods)
            except (RpcUnavailable, BadChainData) as exc:
                last_error = exc
            else:
                missing = _null_blocks(calls, answer.results)
                if not missing or not self._candidates(calls, tried):
                    return answer  # the caller retries nulls, as with one provider
                partial = answer
                # Behind: it lacks these blocks. Remember it (until a head scan says more) and
                # ask one that may have them, at once.
                provider.learn_head(min(missing) - 1, lower_only=True)
        if all(methods & p.lacks for p in self.providers):
            raise (
                last_error
                if isinstance(last_error, MethodNotFound)
                else MethodNotFound(
                    f"{self.chain}: no provider serves {', '.join(sorted(methods))}"
                )
            )
        if partial is not None:
            return partial  # the caller retries its nulls
        if isinstance(last_error, BadChainData):
            raise last_error
        raise RpcUnavailable(
            f"{self.chain}: no provider answered a {calls[0][0] if calls else 'empty'} batch;"
            f" last error: {last_error}",
            getattr(last_error, "last", last_error),
        )

    async def _one(self, provider: Provider, calls: Calls, decode: Decoder) -> Answer:
        """The batch from one provider; what happens is remembered for its score and circuit."""
        probe = provider.may_probe(time.monotonic())
        provider.probing = provider.probing or probe
        provider.pending += 1
        try:
            answer = await provider.transport.send(calls, decode)
        except MethodNotFound:
            self._settled(provider, probe)
            raise
        except RpcUnavailable as exc:
            self._failed(provider, probe, throttled=isinstance(exc.last, RateLimited))
            raise
        except BadChainData:
            self._failed(provider, probe, throttled=False)
            raise
        except RpcError:
            self._settled(provider, probe)
            raise
        finally:
            provider.pending -= 1
        self._succeeded(provider)
        return answer

    def _settled(self, provider: Provider, probe: bool) -> None:
        if probe:
            provider.probing = False

    def _succeeded(self, provider: Provider) -> None:
        provider.failure_rate -= SMOOTHING * provider.failure_rate
        provider.failures_in_a_row = 0
        provider.probing = False
        if provider.is_open():
            provider.open_until = None
            provider.cooldown = CIRCUIT_COOLDOWN_SECONDS
            self.metrics.provider_up.labels(self.chain, provider.name).set(1)
            log.info(
                "%s provider %s answers again: back in rotation",
                self.chain,
                provider.name,
                extra={"source": "rpc", "chain": self.chain, "provider": provider.name},
            )
        self._show_rate(provider)

    def _failed(self, provider: Provider, probe: bool, throttled: bool) -> None:
        provider.failure_rate += SMOOTHING * (1.0 - provider.failure_rate)
        self._show_rate(provider)
        now = time.monotonic()
        if probe:  # still out: the next probe after a longer cool-down
            provider.probing = False
            provider.cooldown = min(CIRCUIT_COOLDOWN_MAX_SECONDS, provider.cooldown * 2)
            provider.open_until = now + provider.cooldown
            return
        if throttled:
            return  # a 429 is a provider asking for less, not a provider down
        provider.failures_in_a_row += 1
        if not provider.is_open() and provider.failures_in_a_row >= CIRCUIT_FAILURES:
            provider.open_until = now + provider.cooldown
            self.metrics.provider_up.labels(self.chain, provider.name).set(0)
            self.metrics.provider_circuit_opened.labels(self.chain, provider.name).inc()
            log.warning(
                "%s provider %s failed %d batches in a row: out of rotation for %.0fs",
                self.chain,
                provider.name,
                provider.failures_in_a_row,
                provider.cooldown,
                extra={"source": "rpc", "chain": self.chain, "provider": provider.name},
            )

    def _show_rate(self, provider: Provider) -> None:
        rate = provider.transport.rate
        if rate is not None:
            self.metrics.provider_rate_limit.labels(self.chain, provider.name).set(rate.rate)

    # --- head -----------------------------------------------------------------------------

    async def latest_available_head(self) -> tuple[int, bytes | None]:
        """The highest latest available block (head-1 rule) among the providers that answer,
        and its hash from the first provider listed at that head (None under the head-1 rule).
        Providers at one height on different forks give different hashes from scan to scan:
        the reorg check then compares its whole window, as it should.

        Each provider's head and lag behind that one are remembered (routing) and shown
        (tindexer_provider_head_lag_blocks). A provider out of rotation is asked once its
        cool-down is over: its answer is its probe.
        """
        now = time.monotonic()
        asked = [p for p in self.providers if not p.is_open() or p.may_probe(now)]
        if not asked:
            asked = list(self.providers)  # every one is out: ask them all
        answers = await asyncio.gather(
            *(self._head_of(provider) for provider in asked), return_exceptions=True
        )
        heads = [answer for answer in answers if isinstance(answer, tuple)]
        if not heads:
            failures = [answer for answer in answers if isinstance(answer, BaseException)]
            first = failures[0] if failures else None
            if isinstance(first, BadChainData):
                raise first
            raise RpcUnavailable(
                f"{self.chain}: no provider answered eth_blockNumber; last error: {first}",
                first if isinstance(first, Exception) else None,
            )
        best = max(head for head, _ in heads)
        for provider in self.providers:
            if provider.head is None:
                continue
            provider.lag = max(0, best - provider.head)
            self.metrics.provider_head_lag.labels(self.chain, provider.name).set(provider.lag)
        return best, next(digest for head, digest in heads if head == best)

    async def _head_of(self, provider: Provider) -> tuple[int, bytes | None]:
        probe = provider.may_probe(time.monotonic())
        provider.probing = provider.probing or probe
        try:
            head, digest = await provider.transport.latest_available_head()
        except (RpcUnavailable, BadChainData) as exc:
            throttled = isinstance(getattr(exc, "last", None), RateLimited)
            self._failed(provider, probe, throttled=throttled)
            raise
        except RpcError:
            self._settled(provider, probe)
            raise
        self._succeeded(provider)
        provider.learn_head(head)
        self.metrics.provider_head.labels(self.chain, provider.name).set(head)
        return head, digest
