"""What every area of metric declarations shares: the registry, the record of label names.

Each area (`scheduling.py`, `rpc.py`, …) is a class whose `declare` adds its families through
the helpers below; `exporter.metrics.Metrics` inherits every area and calls each `declare`, so
callers keep writing `metrics.rpc_requests`. The helpers record each family's label names in
`declared`, our own record: the client library keeps its copy private (`_labelnames`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class ObservedCounter(Collector):
    """A counter whose value is read from elsewhere (e.g. pg_stat_database), not incremented.

    prometheus_client's Counter can only be incremented; this one is set to the source's
    cumulative value, and still exposes the `counter` type with the `_total` suffix.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        if registry is not None:
            registry.register(self)

    def set(self, value: float, *labelvalues: str) -> None:
        self._values[tuple(labelvalues)] = value

    def clear(self) -> None:
        self._values.clear()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labelvalues, value in self._values.items():
            family.add_metric(list(labelvalues), value)
        yield family

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]


Family = Counter | Gauge | Histogram | Info | ObservedCounter
F = TypeVar("F", Counter, Gauge, Histogram, Info, ObservedCounter)


@dataclass(frozen=True)
class Declared:
    """One declared family and its label names, in declaration order."""

    family: Family
    labels: tuple[str, ...]


class Families:
    """The base of every area: where its families are registered and recorded."""

    registry: CollectorRegistry
    declared: list[Declared]

    def declare(self) -> None:
        """Create this area's families (each area overrides it)."""
        raise NotImplementedError

    def _record(self, family: F, labels: Sequence[str]) -> F:
        self.declared.append(Declared(family, tuple(labels)))
        return family

    def _counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return self._record(Counter(name, documentation, labels, registry=self.registry), labels)

    def _gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return self._record(Gauge(name, documentation, labels, registry=self.registry), labels)

    def _histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> Histogram:
        histogram = Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)
        return self._record(histogram, labels)

    def _info(self, name: str, documentation: str) -> Info:
        return self._record(Info(name, documentation, registry=self.registry), ())

    def _observed_counter(
        self, name: str, documentation: str, labels: Sequence[str] = ()
    ) -> ObservedCounter:
        counter = ObservedCounter(name, documentation, labels, registry=self.registry)
        return self._record(counter, labels)
