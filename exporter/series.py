"""Series read straight from prometheus_client's Counter, Gauge and Histogram children.

`collect()` would build a Sample and a label dict per series on every scrape; here a child's
`name{labels}` prefixes are built once (kept in `Prefixes` while the child is on the page) and
only its values are read: a float attribute, read whole under the GIL, without the value's lock
(a third of the page's cost at 13k series; the lock never made a page one snapshot anyway).
This reads the library's private fields (`_metrics`, `_value`, `_buckets`, …) of the version
pinned in requirements.lock; tests/unit/test_exposition.py compares the page with the
library's own encoders, so an upgrade that changes them fails there.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client.openmetrics.exposition import _compose_exemplar_string
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

KINDS: dict[type, str] = {Counter: "counter", Gauge: "gauge", Histogram: "histogram"}


def go_float(value: float) -> str:
    """floatToGoString, on a fast path for the short plain numbers most samples are."""
    text = repr(float(value))
    if len(text) > 7 or "n" in text:  # inf, nan, or long enough to need Go's exponent form
        return floatToGoString(value)
    return text


def label_text(labels: Mapping[str, str]) -> str:
    """`{a="x",b="y"}` in name order, values escaped; empty without labels."""
    if not labels:
        return ""
    pairs = (f'{name}="{_escape(value)}"' for name, value in sorted(labels.items()))
    return "{" + ",".join(pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class Prefixes:
    """Prefixes by series; once most of those kept were not used on a page, all are dropped
    (a deleted chain's series, say), to be rebuilt for the series still there."""

    def __init__(self) -> None:
        self._known: dict[Hashable, Any] = {}
        self._used = 0

    def get(self, key: Hashable) -> Any:
        found = self._known.get(key)
        if found is not None:
            self._used += 1
        return found

    def put(self, key: Hashable, prefix: Any) -> Any:
        self._known[key] = prefix
        self._used += 1
        return prefix

    def sweep(self) -> None:
        """Called after each page."""
        if len(self._known) > 2 * self._used + 1000:
            self._known.clear()
        self._used = 0


@dataclass
class Series:
    """One family as the page needs it: its header fields and its sample lines."""

    name: str
    documentation: str
    type: str
    unit: str
    lines: list[str] = field(default_factory=list)


def _prefixes(family: Any, kind: str, labelvalues: tuple[str, ...]) -> list[str]:
    labels = dict(zip(family._labelnames, labelvalues, strict=True))
    if kind == "counter":
        return [f"{family._name}_total{label_text(labels)} "]
    if kind == "gauge":
        return [f"{family._name}{label_text(labels)} "]
    buckets = [
        f"{family._name}_bucket{label_text({**labels, 'le': floatToGoString(bound)})} "
        for bound in family._upper_bounds
    ]
    ends = [
        f"{family._name}_count{label_text(labels)} ",
        f"{family._name}_sum{label_text(labels)} ",
    ]
    return buckets + ends


def direct_series(collector: object, prefixes: Prefixes, exemplars: bool) -> Series | None:
    """The family's sample lines read from its children (with their exemplars if asked, for
    OpenMetrics), or None when it is no plain library family."""
    kind = KINDS.get(type(collector))
    if kind is None or values.ValueClass is not values.MutexValue:  # multiprocess: collect()
        return None
    family: Any = collector
    if family._labelnames:
        with family._lock:
            children = list(family._metrics.items())
    else:
        children = [((), family)]
    series = Series(family._name, family._documentation, kind, family._unit)
    out = series.lines
    for labelvalues, child in children:
        if "_child_samples" in vars(child):  # a gauge with set_function: collect() calls it
            return None
        key = (family, labelvalues)
        lines = prefixes.get(key) or prefixes.put(key, _prefixes(family, kind, labelvalues))
        if kind == "histogram":
            total = 0.0
            for prefix, bucket in zip(lines, child._buckets, strict=False):
                total += bucket._value
                example = exemplar_text(series, prefix, bucket._exemplar) if exemplars else ""
                out.append(f"{prefix}{go_float(total)}{example}\n")
            out.append(f"{lines[-2]}{go_float(total)}\n")
            if child._upper_bounds[0] >= 0:
                out.append(f"{lines[-1]}{go_float(child._sum._value)}\n")
        elif kind == "counter":
            example = exemplar_text(series, lines[0], child._value._exemplar) if exemplars else ""
            out.append(f"{lines[0]}{go_float(child._value._value)}{example}\n")
        else:
            out.append(f"{lines[0]}{go_float(child._value._value)}\n")
    return series


def exemplar_text(family: Series, prefix: str, exemplar: Exemplar | None) -> str:
    """An exemplar's ` # {labels} value timestamp`, as the library writes it."""
    if exemplar is None:
        return ""
    sample = Sample(prefix.split("{", 1)[0].rstrip(), {}, 0.0, None, exemplar)
    return str(_compose_exemplar_string(family, sample, exemplar))
