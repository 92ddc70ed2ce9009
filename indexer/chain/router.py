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

Providers are witnesses, not oracles. Each proves the chain id (pinned in config or stored,
else the providers' majority answer) before it serves anything, and again when its circuit
closes; one on another chain is kept out (tindexer_provider_chain_id_mismatch). Every error a
provider gives counts against it and moves the batch to another; a chain-level error comes
only when every provider refused. A head is adopted only once verified (witness.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

from exporter.metrics import Metrics, default_metrics
from indexer.chain.decoders import Calls, Decoder, decode_quantities
from indexer.chain.errors import (
    MethodNotFound,
    RateLimited,
    RpcError,
    RpcUnavailable,
    WrongChain,
)
from indexer.chain.model import BadChainData
from indexer.chain.provider import CIRCUIT_COOLDOWN_SECONDS, Provider, highest_block, null_blocks
from indexer.chain.sender import Answer, RpcSettings, backoff_seconds
from indexer.chain.transport import Transport
from indexer.chain.witness import Claim, growth_allowance, verify_heads
from indexer.config import ProviderConfig

log = logging.getLogger(__name__)

CIRCUIT_FAILURES = 3  # batches failed in a row that take a provider out
CIRCUIT_COOLDOWN_MAX_SECONDS = 30.0  # a provider that is back gets traffic within this
SMOOTHING = 0.2  # weight of the newest batch in the moving average of failures


class Router:
    """A chain's providers as one Sender; one Transport per provider underneath."""

    def __init__(
        self,
        chain: str,
        providers: Sequence[tuple[ProviderConfig, RpcSettings]],
        settings: RpcSettings,
        metrics: Metrics | None = None,
        chain_id: int | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a chain needs at least one provider")
        metrics = metrics or default_metrics()
        self.chain = chain
        self.settings = settings  # the router's own retries; each provider has its own
        self.metrics = metrics
        self.chain_id = chain_id  # pinned (config or stored); None: learned by majority
        self._pinning = asyncio.Lock()
        self.verified_head: int | None = None
        self._verified_at = 0.0
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
        if chain_id is not None:
            metrics.chain_id.labels(chain).set(chain_id)

    async def close(self) -> None:
        for provider in self.providers:
            await provider.transport.close()

    # --- chain id -------------------------------------------------------------------------

    async def pinned_chain_id(self) -> int:
        """The chain's id: pinned, else the id most providers answer (first listed on a tie)."""
        async with self._pinning:
            if self.chain_id is None:
                answers = await asyncio.gather(
                    *(self._ask_chain_id(p) for p in self.providers), return_exceptions=True
                )
                ids = [answer for answer in answers if isinstance(answer, int)]
                if not ids:
                    raise RpcUnavailable(
                        f"{self.chain}: no provider answered eth_chainId; last error: {answers[0]}",
                        answers[0] if isinstance(answers[0], Exception) else None,
                    )
                self.chain_id = max(ids, key=lambda value: (ids.count(value), -ids.index(value)))
                self.metrics.chain_id.labels(self.chain).set(self.chain_id)
                for provider in self.providers:
                    self._show_chain(provider)
            return self.chain_id

    async def _ask_chain_id(self, provider: Provider) -> int:
        answer = await provider.transport.send([("eth_chainId", [])], decode_quantities)
        provider.chain_id = int(answer.results[0])
        provider.chain_checked_at = time.monotonic()
        self.metrics.provider_chain_id.labels(self.chain, provider.name).set(provider.chain_id)
        return provider.chain_id

    async def _check_chain(self, provider: Provider) -> None:
        """Raise WrongChain unless `provider` proved the chain's id (asked when due)."""
        expected = self.chain_id if self.chain_id is not None else await self.pinned_chain_id()
        if provider.chain_check_due(expected, time.monotonic()):
            await self._ask_chain_id(provider)
            self._show_chain(provider)
        if provider.on_chain(expected) is False:
            raise WrongChain(
                f"{self.chain}: provider {provider.name} is on the wrong chain: chain id"
                f" {provider.chain_id}, expected {expected}; nothing from it is used"
            )

    def _show_chain(self, provider: Provider) -> None:
        wrong = provider.on_chain(self.chain_id) is False
        self.metrics.provider_chain_id_mismatch.labels(self.chain, provider.name).set(wrong)
        if wrong:
            log.error(
                "%s provider %s: wrong chain id %s, expected %s: kept out of rotation",
                self.chain,
                provider.name,
                provider.chain_id,
                self.chain_id,
                extra={"source": "rpc", "chain": self.chain, "provider": provider.name},
            )

    # --- routing --------------------------------------------------------------------------

    def _candidates(self, calls: Calls, tried: set[str]) -> list[Provider]:
        """Providers that could answer this batch now, best-suited first in no order."""
        methods = {method for method, _ in calls}
        now = time.monotonic()
        able = [
            p
            for p in self.providers
            if not p.lacks_any(methods, now)
            and p.name not in tried
            and p.on_chain(self.chain_id) is not False
        ]
        highest = highest_block(calls)
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

    def _serving(self, methods: set[str]) -> set[str]:
        """Providers on the chain that do not lack any of `methods`."""
        now = time.monotonic()
        return {p.name for p in self._on_chain() if not p.lacks_any(methods, now)}

    def _on_chain(self, recheck: bool = False) -> list[Provider]:
        """Providers not known to be on another chain; with `recheck`, also those on another
        chain that are due to be asked again (a head scan asks them: a fixed one returns)."""
        now = time.monotonic()
        return [
            p
            for p in self.providers
            if p.on_chain(self.chain_id) is not False
            or (recheck and p.chain_check_due(self.chain_id, now))
        ]

    async def send(self, calls: Calls, decode: Decoder) -> Answer:
        """Send a batch to one provider, then to the others while it fails or refuses it."""
        if len(self.providers) == 1:
            return await self._one(self.providers[0], calls, decode)
        methods = {method for method, _ in calls}
        tried: set[str] = set()
        refused: dict[str, RpcError] = {}  # permanent refusals of this batch, by provider
        last_error: Exception | None = None
        partial: Answer | None = None  # an answer with null blocks, if nothing better comes
        attempts = max(self.settings.max_retries + 1, len(self.providers))
        for attempt in range(attempts):
            serving = self._serving(methods)
            if not serving:
                break  # nobody serves it: the caller may fall back to another method
            if serving <= refused.keys():
                break  # every provider refused this very batch: the chain's error
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
                provider.refused(methods, time.monotonic())
            except (RpcUnavailable, BadChainData) as exc:
                last_error = exc
            except RpcError as exc:  # refused (invalid params, its plan, another chain)
                last_error = refused[provider.name] = exc
            else:
                missing = null_blocks(calls, answer.results)
                if not missing or not self._candidates(calls, tried):
                    return answer  # the caller retries nulls, as with one provider
                partial = answer
                # Behind: it lacks these blocks. Remember it (until a head scan says more) and
                # ask one that may have them, at once.
                provider.learn_head(min(missing) - 1, lower_only=True)
        if not self._serving(methods):
            raise (
                last_error
                if isinstance(last_error, MethodNotFound)
                else MethodNotFound(
                    f"{self.chain}: no provider serves {', '.join(sorted(methods))}"
                )
            )
        if partial is not None:
            return partial  # the caller retries its nulls
        if isinstance(last_error, BadChainData | RpcError):
            raise last_error
        raise RpcUnavailable(
            f"{self.chain}: no provider answered a {calls[0][0] if calls else 'empty'} batch;"
            f" last error: {last_error}",
            getattr(last_error, "last", last_error),
        )

    async def ask_each(self, calls: Calls, decode: Decoder) -> dict[str, Answer | None]:
        """The same batch from every provider on the chain and in rotation (witnesses), at
        once; None for one that failed. Nothing is retried on another provider."""
        now = time.monotonic()
        asked = [p for p in self._on_chain() if not p.is_open() or p.may_probe(now)]

        async def one(provider: Provider) -> Answer | None:
            try:
                return await self._one(provider, calls, decode)
            except (RpcError, RpcUnavailable, BadChainData):
                return None

        answers = await asyncio.gather(*(one(provider) for provider in asked))
        return {p.name: answer for p, answer in zip(asked, answers, strict=True)}

    async def _one(self, provider: Provider, calls: Calls, decode: Decoder) -> Answer:
        """The batch from one provider; what happens is remembered for its score and circuit.
        A probe cancelled on the way (its activity ended) leaves the provider probe-able."""
        probe = provider.may_probe(time.monotonic())
        provider.probing = provider.probing or probe
        provider.pending += 1
        try:
            if probe:
                provider.chain_id = None  # back from an outage: prove the chain again
            await self._check_chain(provider)
            answer = await provider.transport.send(calls, decode)
        except MethodNotFound:
            raise  # a method it lacks is no fault of the provider (send remembers it)
        except RpcUnavailable as exc:
            self._failed(provider, probe, throttled=isinstance(exc.last, RateLimited))
            raise
        except (BadChainData, RpcError):
            self._failed(provider, probe, throttled=False)
            raise
        finally:
            provider.pending -= 1
            if probe:  # answered, failed or cancelled (its activity ended): probe-able again
                provider.probing = False
        self._succeeded(provider)
        return answer

    def _succeeded(self, provider: Provider) -> None:
        provider.failure_rate -= SMOOTHING * provider.failure_rate
        provider.failures_in_a_row = 0
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
        """The highest verified latest available block (head-1 rule) among the providers that
        answer (witness.verify_heads), and its hash when its provider served it.
        Providers at one height on different forks give different hashes from scan to scan:
        the reorg check then compares its whole window, as it should.

        Each provider's head and lag behind that one are remembered (routing) and shown
        (tindexer_provider_head_lag_blocks); a provider whose claim was not adopted is demoted
        and counted (tindexer_provider_head_rejected_total). A provider out of rotation is
        asked once its cool-down is over: its answer is its probe.
        """
        now = time.monotonic()
        on_chain = self._on_chain(recheck=True) or list(self.providers)
        asked = [p for p in on_chain if not p.is_open() or p.may_probe(now)] or on_chain
        answers = await asyncio.gather(
            *(self._head_of(provider) for provider in asked), return_exceptions=True
        )
        claims = [answer for answer in answers if isinstance(answer, Claim)]
        if not claims:
            failures = [answer for answer in answers if isinstance(answer, BaseException)]
            first = failures[0] if failures else None
            if isinstance(first, BadChainData | WrongChain):
                raise first
            raise RpcUnavailable(
                f"{self.chain}: no provider answered eth_blockNumber; last error: {first}",
                first if isinstance(first, Exception) else None,
            )
        allowance = growth_allowance(time.monotonic() - self._verified_at)
        verdict = verify_heads(claims, self.verified_head, allowance)
        self.verified_head, self._verified_at = verdict.head, time.monotonic()
        rejected = {claim.provider for claim in verdict.rejected}
        for provider, answer in zip(asked, answers, strict=True):
            if isinstance(answer, Claim):
                self._judge_claim(provider, answer, provider.name in rejected, verdict.head)
        for provider in self.providers:
            if provider.head is None:
                continue
            provider.lag = max(0, verdict.head - provider.head)
            self.metrics.provider_head_lag.labels(self.chain, provider.name).set(provider.lag)
        return verdict.head, verdict.digest

    def _judge_claim(self, provider: Provider, claim: Claim, rejected: bool, head: int) -> None:
        """Remember a verified claim as the provider's head; a rejected one is counted, and the
        provider is routed as if at the verified head and demoted until a claim of it holds."""
        was = provider.head_unverified
        provider.head_unverified = rejected
        self.metrics.provider_head_unverified.labels(self.chain, provider.name).set(rejected)
        if not rejected:
            provider.learn_head(claim.head)
            self.metrics.provider_head.labels(self.chain, provider.name).set(claim.head)
            return
        provider.learn_head(head)
        self.metrics.provider_head_rejected.labels(self.chain, provider.name).inc()
        if not was:
            log.warning(
                "%s provider %s claims head %d, which no other provider witnesses and it does"
                " not serve: not adopted (head %d); it is demoted until its claims hold",
                self.chain,
                provider.name,
                claim.head,
                head,
                extra={"source": "rpc", "chain": self.chain, "provider": provider.name},
            )

    async def _head_of(self, provider: Provider) -> Claim:
        probe = provider.may_probe(time.monotonic())
        provider.probing = provider.probing or probe
        try:
            if probe:
                provider.chain_id = None  # back from an outage: prove the chain again
            await self._check_chain(provider)
            head, digest = await provider.transport.latest_available_head()
        except (RpcUnavailable, BadChainData) as exc:
            throttled = isinstance(getattr(exc, "last", None), RateLimited)
            self._failed(provider, probe, throttled=throttled)
            raise
        except RpcError:
            self._failed(provider, probe, throttled=False)
            raise
        finally:
            if probe:  # answered, failed or cancelled: probe-able again
                provider.probing = False
        self._succeeded(provider)
        return Claim(provider.name, head, digest, provider.config.max_head_lag)
