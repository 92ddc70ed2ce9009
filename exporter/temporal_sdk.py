"""The Temporal SDK's own metrics (`temporal_*`) re-exposed on our /metrics endpoint.

The SDK writes metric updates into a `MetricBuffer`; `drain()` folds them into cumulative
values that `collect()` exposes. One name arrives with different attribute sets, so each
family is padded to the union of its label names. Rate-limit refusals the SDK retries silently
(`temporal_request_failure{status_code="RESOURCE_EXHAUSTED"}`) are also counted into
`tindexer_rate_limited_total{source="temporal"}`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from exporter.metrics import Metrics

SDK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BUFFER_SIZE = 200_000  # drained every few seconds; far above what a busy worker emits
_INVALID = re.compile(r"[^a-zA-Z0-9_]")

LabelValues = tuple[tuple[str, str], ...]


@dataclass
class _Family:
    name: str
    kind: int
    description: str
    label_names: set[str] = field(default_factory=set)
    values: dict[LabelValues, float] = field(default_factory=dict)
    buckets: dict[LabelValues, list[int]] = field(default_factory=dict)
    sums: dict[LabelValues, float] = field(default_factory=dict)


def _sanitise(name: str) -> str:
    return _INVALID.sub("_", name)


class SdkMetrics(Collector):
    """A prometheus_client collector over a Temporal runtime's metric buffer."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.buffer = MetricBuffer(BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        self._families: dict[str, _Family] = {}
        metrics.registry.register(self)

    def drain(self) -> None:
        """Fold buffered updates into cumulative values; call it every few seconds."""
        for update in self.buffer.retrieve_updates():
            metric = update.metric
            name = _sanitise(metric.name)
            family = self._families.get(name)
            if family is None:
                family = _Family(name, metric.kind, metric.description or name)
                self._families[name] = family
            labels = tuple(sorted((_sanitise(k), str(v)) for k, v in update.attributes.items()))
            family.label_names.update(k for k, _ in labels)
            value = float(update.value)
            if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                family.values[labels] = family.values.get(labels, 0.0) + value
                attributes = dict(labels)
                if (
                    name == "temporal_request_failure"
                    and attributes.get("status_code") == "RESOURCE_EXHAUSTED"
                ):
                    self.metrics.rate_limited.labels("temporal").inc(value)
            elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                family.values[labels] = value
            else:
                counts = family.buckets.setdefault(labels, [0] * (len(SDK_BUCKETS) + 1))
                counts[bisect.bisect_left(SDK_BUCKETS, value)] += 1
                family.sums[labels] = family.sums.get(labels, 0.0) + value

    def _padded(self, family: _Family, labels: LabelValues) -> tuple[list[str], list[str]]:
        names = sorted(family.label_names)
        given = dict(labels)
        return names, [given.get(n, "") for n in names]

    def collect(self) -> Iterator[Metric]:
        for family in list(self._families.values()):
            names = sorted(family.label_names)
            if family.kind == BUFFERED_METRIC_KIND_COUNTER:
                counter = CounterMetricFamily(family.name, family.description, labels=names)
                for labels, value in family.values.items():
                    counter.add_metric(self._padded(family, labels)[1], value)
                yield counter
            elif family.kind == BUFFERED_METRIC_KIND_GAUGE:
                gauge = GaugeMetricFamily(family.name, family.description, labels=names)
                for labels, value in family.values.items():
                    gauge.add_metric(self._padded(family, labels)[1], value)
                yield gauge
            else:
                histogram = HistogramMetricFamily(family.name, family.description, labels=names)
                for labels, counts in family.buckets.items():
                    cumulative, running = [], 0
                    for bound, count in zip((*SDK_BUCKETS, float("inf")), counts, strict=True):
                        running += count
                        cumulative.append(
                            (str(bound) if bound != float("inf") else "+Inf", running)
                        )
                    histogram.add_metric(
                        self._padded(family, labels)[1], cumulative, family.sums[labels]
                    )
                yield histogram

    def describe(self) -> Iterable[Metric]:
        return []  # families appear as the SDK reports them
