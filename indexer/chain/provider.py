"""One provider of a chain and what the router has seen of it: circuit, head, chain id, lacks.

Nothing a provider says is taken for good: a chain id it answered is asked again after its
circuit closes, a method it refused is asked again after LACK_SECONDS, and a head it claims
counts only once verified (witness.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from indexer.chain.decoders import Calls
from indexer.chain.transport import Transport
from indexer.config import ProviderConfig

CIRCUIT_COOLDOWN_SECONDS = 5.0  # before the first probe; doubles while probes fail
HEAD_TTL_SECONDS = 30.0  # a provider's head, from a head scan or a null answer, is this fresh
QUEUE_SECONDS = 0.25  # a batch may wait this long for a provider's rate before going elsewhere
LAGGING_SCORE = 0.05  # a provider behind by more than its max_head_lag gets 1/20 of its share
# A method a provider answered -32601 for is not sent to it for this long: a brief refusal by
# every provider (a plan change, a node restarting) must not stop the chain until a restart.
LACK_SECONDS = 300.0
# A provider on the wrong chain is asked its chain id again this often (a fixed backend).
WRONG_CHAIN_RECHECK_SECONDS = 60.0
# Methods whose first parameter is a block number: a provider is not asked for one above its head.
BLOCK_METHODS = frozenset({"eth_getBlockByNumber", "eth_getBlockReceipts"})


@dataclass
class Provider:
    """One provider and what the router has seen of it."""

    config: ProviderConfig
    transport: Transport
    lacks: set[str] = field(default_factory=set)  # configured: for good
    lacks_until: dict[str, float] = field(default_factory=dict)  # learned: until then
    pending: int = 0  # batches handed to it and not answered yet, queued ones included
    failure_rate: float = 0.0  # moving average of failed (0/1) batches, 429s included
    failures_in_a_row: int = 0
    open_until: float | None = None  # circuit open until then; None: closed
    cooldown: float = CIRCUIT_COOLDOWN_SECONDS
    probing: bool = False
    head: int | None = None
    head_at: float = float("-inf")  # when `head` was learned (a head scan, or a null answer)
    lag: int = 0
    head_unverified: bool = False  # its last head claim was not adopted (witness.py)
    chain_id: int | None = None  # what it answered to eth_chainId, None: not asked yet
    chain_checked_at: float = float("-inf")

    @property
    def name(self) -> str:
        return self.config.name

    def is_open(self) -> bool:
        return self.open_until is not None

    def may_probe(self, now: float) -> bool:
        return self.open_until is not None and now >= self.open_until and not self.probing

    def lacks_any(self, methods: set[str], now: float) -> bool:
        """Whether it lacks one of `methods`: configured so, or refused lately."""
        if methods & self.lacks:
            return True
        return any(self.lacks_until.get(method, 0.0) > now for method in methods)

    def refused(self, methods: set[str], now: float) -> None:
        """It answered method-not-found: not asked these for LACK_SECONDS."""
        for method in methods:
            self.lacks_until[method] = now + LACK_SECONDS

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
        demoted = self.lagging() or self.head_unverified
        return score * LAGGING_SCORE if demoted else score

    def busy_for(self) -> float:
        """Seconds before this provider could send: a Retry-After pause or its request rate."""
        rate = self.transport.rate.wait_seconds() if self.transport.rate is not None else 0.0
        return max(self.transport.paused_for(), rate)

    def ready(self) -> bool:
        """Free to send soon: not paused, its rate's next slot near, a request slot free."""
        return self.busy_for() <= QUEUE_SECONDS and self.pending < self.transport.limiter.limit

    def on_chain(self, expected: int | None) -> bool | None:
        """Whether its chain id is the chain's: None while unknown (not asked, or no pin)."""
        if self.chain_id is None or expected is None:
            return None
        return self.chain_id == expected

    def chain_check_due(self, expected: int | None, now: float) -> bool:
        """Ask its chain id: never asked, or on the wrong chain and due for another look."""
        if self.chain_id is None:
            return True
        wrong = self.on_chain(expected) is False
        return wrong and now - self.chain_checked_at >= WRONG_CHAIN_RECHECK_SECONDS


def highest_block(calls: Calls) -> int | None:
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


def null_blocks(calls: Calls, results: Sequence[Any]) -> list[int]:
    """Numbers of the blocks asked by number that came back null (not available there yet)."""
    return [
        int(params[0], 16)
        for (method, params), result in zip(calls, results, strict=True)
        if result is None and method == "eth_getBlockByNumber" and params
        if isinstance(params[0], str) and params[0].startswith("0x")
    ]
