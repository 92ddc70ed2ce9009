"""What the fetcher sends batches through: one provider (transport.py) or a router of several
(router.py), both `Sender`s, and what a sent batch gives back (`Answer`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from exporter.metrics import Metrics
from indexer.chain.decoders import Calls, Decoder
from indexer.chain.errors import MAX_RETRY_AFTER_SECONDS
from indexer.config import DEFAULT_RPC_MAX_RESPONSE_BYTES

__all__ = ["Answer", "Calls", "RpcSettings", "Sender", "backoff_seconds"]


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


def backoff_seconds(settings: RpcSettings, attempt: int) -> float:
    """Full-jitter exponential backoff, so many clients do not retry in lockstep."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2**attempt)
    return random.uniform(0, ceiling)


@dataclass(frozen=True)
class Answer:
    """A batch's results in call order, and the answer bytes they were decoded from (what
    the worker's memory budget measures a batch by)."""

    results: list[Any]
    size: int

    def __add__(self, other: Answer) -> Answer:
        return Answer(self.results + other.results, self.size + other.size)


class Sender(Protocol):
    """Sends a chain's batches: checked results (Answer), or RpcUnavailable / BadChainData /
    a permanent RpcError such as MethodNotFound."""

    chain: str
    settings: RpcSettings
    metrics: Metrics

    async def send(self, calls: Calls, decode: Decoder) -> Answer: ...

    async def latest_available_head(self) -> tuple[int, bytes | None]:
        """The head-1 rule's latest available block, and its hash when block N answered."""
        ...

    async def ask_each(self, calls: Calls, decode: Decoder) -> dict[str, Answer | None]:
        """The same batch from every provider in rotation, by name (None: it failed)."""
        ...

    async def pinned_chain_id(self) -> int:
        """The chain id every answer must come from."""
        ...

    async def close(self) -> None: ...
