"""Which metric names dashboards and alerts may use, and a small PromQL scanner to check them.

Names come from `exporter/metrics.py` (read from a fresh registry, so nothing is hard-coded
here) and from the Temporal SDK's own metrics that the worker re-exposes, listed below. A
counter family `x` is exposed as `x_total`, a histogram as `x_bucket`, `x_count` and `x_sum`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from dashboards.queries.temporal_server import (
    TEMPORAL_SERVER_COUNTERS,
    TEMPORAL_SERVER_GAUGES,
    TEMPORAL_SERVER_HISTOGRAMS,
)
from exporter.metrics import Metrics

# The Temporal SDK's metrics the dashboards and alerts read, by family name and type (the
# worker re-exposes them through exporter/temporal_sdk.py, counters with a `_total` suffix).
TEMPORAL_SDK_METRICS: dict[str, str] = {
    "temporal_request_failure": "counter",
    "temporal_long_request_failure": "counter",
    "temporal_workflow_task_schedule_to_start_latency": "histogram",
    "temporal_activity_schedule_to_start_latency": "histogram",
    "temporal_activity_execution_failed": "counter",
    "temporal_worker_task_slots_available": "gauge",
    "temporal_worker_task_slots_used": "gauge",
}
# The Temporal server's own series (dashboards/queries/temporal_server.py): its counters have no
# `_total` suffix, so they are listed by series name.
TEMPORAL_SERVER_SERIES: dict[str, str] = {
    **dict.fromkeys(TEMPORAL_SERVER_COUNTERS, "counter"),
    **{
        name + suffix: "counter"
        for name in TEMPORAL_SERVER_HISTOGRAMS
        for suffix in ("_bucket", "_count", "_sum")
    },
    **dict.fromkeys(TEMPORAL_SERVER_GAUGES, "gauge"),
}
# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES: dict[str, str] = {"up": "gauge"}

_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
    "info": ("_info",),
}
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _series(families: dict[str, str]) -> dict[str, str]:
    """Exposed series name → the type of its family ('counter' for histogram parts)."""
    out: dict[str, str] = {}
    for family, kind in families.items():
        for suffix in _SUFFIXES.get(kind, ("",)):
            out[family + suffix] = "counter" if kind in ("counter", "histogram") else kind
    return out


def exporter_families() -> dict[str, str]:
    """Family name → type of every metric `exporter/metrics.py` declares."""
    registry = CollectorRegistry()
    Metrics(registry)
    return {family.name: family.type for family in registry.collect()}


def declared_series() -> dict[str, str]:
    """Every series name a query may read, with its type."""
    return {
        **_series(exporter_families()),
        **_series(TEMPORAL_SDK_METRICS),
        **TEMPORAL_SERVER_SERIES,
        **PROMETHEUS_SERIES,
    }


# --- Scanning PromQL ---------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_RATE = re.compile(r"\b(rate|irate|increase)\s*\(")
_RANGE_ARGUMENT = re.compile(
    r"\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*\[([^\]]+)\](\s+offset\s+\w+)?\s*"
)


def metric_names(expr: str) -> set[str]:
    """Metric names selected by `expr` (not functions, keywords, labels or durations)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _NAME.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":  # a duration (15m) or a number (1e3)
            continue
        if text[match.end() :].lstrip().startswith("("):  # a function or aggregation
            continue
        if match.group(0).lower() in _KEYWORDS:
            continue
        names.add(match.group(0))
    return names


@dataclass(frozen=True)
class RangeCall:
    function: str
    argument: str  # the text inside the parentheses
    metric: str | None  # None when the argument is not a plain range selector
    window: str | None


def range_calls(expr: str) -> list[RangeCall]:
    """Every rate(), irate() and increase() in `expr`, with its metric and window."""
    calls = []
    for match in _RATE.finditer(expr):
        depth, end = 1, match.end()
        while depth and end < len(expr):
            depth += {"(": 1, ")": -1}.get(expr[end], 0)
            end += 1
        argument = expr[match.end() : end - 1]
        selector = _RANGE_ARGUMENT.fullmatch(argument)
        calls.append(
            RangeCall(
                match.group(1),
                argument,
                selector.group(1) if selector else None,
                selector.group(3).strip() if selector else None,
            )
        )
    return calls


def is_counter_series(name: str, declared: dict[str, str]) -> bool:
    """A counter, or a histogram's bucket/count/sum: what rate() may be applied to."""
    if name in TEMPORAL_SERVER_COUNTERS:
        return True
    return declared.get(name) == "counter" and name.endswith(COUNTER_SUFFIXES)
