"""The /metrics page rendered at a cost that stays small with a hundred chains.

prometheus_client's encoders rebuild every sample on every scrape: `collect()` makes a Sample
(and a label dict) per series, then the encoder sorts, escapes and checks its labels; at 10k+
series that is the whole scrape (bench/metrics_scrape.py). A series' name and labels do not
change while it exists, so here each series' `name{labels}` prefix is built once and reused,
and the library's Counter, Gauge and Histogram children are read directly (exporter/series.py);
other collectors (Info, the SDK's, ObservedCounter) go through `collect()`. The `_created`
samples (one more series per counter and histogram child that no dashboard, alert or the doctor
reads) are left out. Otherwise the page is prometheus_client's, byte for byte, in text 0.0.4
and OpenMetrics 1.0.0 with exemplars (tests/unit/test_exposition.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric, Sample
from prometheus_client.openmetrics.exposition import _compose_exemplar_string
from prometheus_client.registry import CollectorRegistry

from exporter.series import Prefixes, Series, direct_series, go_float, label_text

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# The text format's type names for the OpenMetrics ones it lacks, and the suffix it adds.
TEXT_TYPES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}
TEXT_SUFFIXES = {"counter": "_total", "info": "_info"}
# Samples the text format moves into a gauge family of their own, after the family's samples.
TEXT_APART = ("_gsum", "_gcount")


def wants_openmetrics(accept: str) -> bool:
    """Whether the scraper asks for OpenMetrics 1.0 (as Prometheus does by default)."""
    for accepted in accept.split(","):
        parts = [part.strip() for part in accepted.split(";")]
        if parts[0] != "application/openmetrics-text":
            continue
        versions = [p.removeprefix("version=") for p in parts[1:] if p.startswith("version=")]
        if not versions or versions[0].startswith("1."):
            return True
    return False


class Renderer:
    """Renders one registry; keeps each series' prefix while the series is on the page."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.prefixes = Prefixes()

    def _families(self, exemplars: bool) -> Iterator[Series | Metric]:
        """The registry's families in its order: read directly where we can, else collected."""
        with self.registry._lock:  # what registry.collect() reads
            collectors = list(self.registry._collector_to_names)
            target_info = (
                self.registry._target_info_metric() if self.registry._target_info else None
            )
        if target_info is not None:
            yield target_info
        for collector in collectors:
            series = direct_series(collector, self.prefixes, exemplars)
            if series is not None:
                yield series
            else:
                yield from collector.collect()

    def _prefix(self, sample: Sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        prefix = self.prefixes.get(key)
        if prefix is None:
            prefix = self.prefixes.put(key, sample.name + label_text(sample.labels) + " ")
        return prefix

    def text(self) -> bytes:
        """The Prometheus text format 0.0.4, without `_created` samples."""
        out: list[str] = []
        for family in self._families(exemplars=False):
            name = family.name + TEXT_SUFFIXES.get(family.type, "")
            help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} ")
            out.append(f"{TEXT_TYPES.get(family.type, family.type)}\n")
            if isinstance(family, Series):
                out.extend(family.lines)
                continue
            apart: dict[str, list[str]] = {}
            for sample in family.samples:
                suffix = sample.name[len(family.name) :]
                if suffix == "_created":
                    continue
                stamp = (
                    "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000)}"
                )
                line = f"{self._prefix(sample)}{go_float(sample.value)}{stamp}\n"
                if suffix in TEXT_APART:
                    apart.setdefault(suffix, []).append(line)
                else:
                    out.append(line)
            for suffix, lines in sorted(apart.items()):
                out.append(f"# HELP {family.name}{suffix} {help_text}\n")
                out.append(f"# TYPE {family.name}{suffix} gauge\n")
                out.extend(lines)
        self.prefixes.sweep()
        return "".join(out).encode()

    def openmetrics(self) -> bytes:
        """OpenMetrics 1.0.0 with exemplars, without `_created` samples."""
        out: list[str] = []
        for family in self._families(exemplars=True):
            help_text = escape(family.documentation)
            out.append(f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.type}\n")
            if family.unit:
                out.append(f"# UNIT {family.name} {family.unit}\n")
            if isinstance(family, Series):
                out.extend(family.lines)
                continue
            for sample in family.samples:
                if sample.name == family.name + "_created" or sample.native_histogram:
                    continue
                stamp = "" if sample.timestamp is None else f" {sample.timestamp}"
                example = ""
                if sample.exemplar:
                    example = _compose_exemplar_string(family, sample, sample.exemplar)
                out.append(f"{self._prefix(sample)}{go_float(sample.value)}{stamp}{example}\n")
        out.append("# EOF\n")
        self.prefixes.sweep()
        return "".join(out).encode()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The page in the format the scraper's Accept header prefers, and its content type."""
        if wants_openmetrics(accept):
            return self.openmetrics(), OPENMETRICS_CONTENT_TYPE
        return self.text(), TEXT_CONTENT_TYPE


def escape(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
