"""Replica autoscaling: desired = ceil(backlog / per-replica target), clamped, slow to shrink.

The same rule as Kubernetes' HPA and KEDA (desired = ceil(metric / target)), with HPA's
scale-down stabilisation: a chain scales up at once but down only to the highest
recommendation of the last `scale_down_window_seconds`, so a backlog that drains in bursts
does not make workers flap. The bounds are applied last, from the chain's current config, so
a PATCHed `min_replicas`/`max_replicas` takes effect on the very next evaluation.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

DEFAULT_BLOCKS_PER_REPLICA = 50_000  # ≈ 20 s of one worker's measured throughput per replica
DEFAULT_SCALE_DOWN_WINDOW_SECONDS = 300.0  # HPA's default: five minutes before shrinking


@dataclass(frozen=True)
class Recommendation:
    chain: str
    backlog: int
    raw: int  # ceil(backlog / blocks_per_replica), before bounds and stabilisation
    desired: int
    min_replicas: int
    max_replicas: int


def raw_replicas(backlog: int, blocks_per_replica: int) -> int:
    """Replicas the backlog asks for, before any bound: ceil(backlog / target)."""
    if blocks_per_replica < 1:
        raise ValueError("blocks_per_replica must be at least 1")
    return math.ceil(max(backlog, 0) / blocks_per_replica)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@dataclass
class Autoscaler:
    """Per chain: the desired replica count from its backlog, bounds and recent history."""

    blocks_per_replica: int = DEFAULT_BLOCKS_PER_REPLICA
    scale_down_window_seconds: float = DEFAULT_SCALE_DOWN_WINDOW_SECONDS
    _history: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def recommend(
        self, chain: str, backlog: int, min_replicas: int, max_replicas: int, now: float
    ) -> Recommendation:
        """The replicas `chain` should run at time `now` (seconds, monotonic)."""
        raw = raw_replicas(backlog, self.blocks_per_replica)
        history = self._history.setdefault(chain, deque())
        history.append((now, raw))
        while history and now - history[0][0] > self.scale_down_window_seconds:
            history.popleft()
        stabilised = max(value for _, value in history)
        desired = clamp(stabilised, min_replicas, max_replicas)
        return Recommendation(chain, backlog, raw, desired, min_replicas, max_replicas)

    def forget(self, chains: set[str]) -> None:
        """Drop the history of chains that no longer exist."""
        for chain in set(self._history) - chains:
            del self._history[chain]
