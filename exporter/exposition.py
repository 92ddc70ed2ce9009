"""The /metrics page rendered at a cost that stays small with a hundred chains.

prometheus_client's encoders format every sample from scratch on every scrape: they sort and
escape its labels and check each name, which is most of a scrape's time at 10k+ series
(bench/metrics_scrape.py). A series' name and labels do not change while it exists, so here
each sample's `name{labels}` prefix is built once and reused; only the value is formatted per
scrape. The `_created` samples (one more series per counter and histogram child, which no
dashboard, alert or the doctor reads) are left out. Otherwise the page is prometheus_client's,
byte for byte, in text 0.0.4 and OpenMetrics 1.0.0 with exemplars (tests/unit/test_exposition.py).
"""

from __future__ import annotations

from prometheus_client.core import Metric, Sample
from prometheus_client.openmetrics.exposition import _compose_exemplar_string
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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

Key = tuple[str, tuple[tuple[str, str], ...]]


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def go_float(value: float) -> str:
    """floatToGoString, on a fast path for the short plain numbers most samples are."""
    text = repr(float(value))
    if len(text) > 7 or "n" in text:  # inf, nan, or long enough to need Go's exponent form
        return floatToGoString(value)
    return text


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
    """Renders a registry; keeps each series' prefix while the series is on the page."""

    def __init__(self, registry: Collector) -> None:
        self.registry = registry
        self._prefixes: dict[Key, str] = {}

    def _prefix(self, sample: Sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        prefix = self._prefixes.get(key)
        if prefix is None:
            labels = ",".join(
                f'{name}="{_escape_value(value)}"' for name, value in sorted(sample.labels.items())
            )
            prefix = f"{sample.name}{{{labels}}} " if labels else f"{sample.name} "
            self._prefixes[key] = prefix
        return prefix

    def _forget_gone(self, rendered: int) -> None:
        """Drop the prefixes once most belong to series gone (a chain deleted, say)."""
        if len(self._prefixes) > 2 * rendered + 1000:
            self._prefixes.clear()

    def text(self) -> bytes:
        """The Prometheus text format 0.0.4, without `_created` samples."""
        output: list[str] = []
        rendered = 0
        for metric in self.registry.collect():
            name = metric.name + TEXT_SUFFIXES.get(metric.type, "")
            help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            output.append(f"# HELP {name} {help_text}\n")
            output.append(f"# TYPE {name} {TEXT_TYPES.get(metric.type, metric.type)}\n")
            apart: dict[str, list[str]] = {}
            for sample in metric.samples:
                suffix = sample.name[len(metric.name) :]
                if suffix == "_created":
                    continue
                line = self._line(sample)
                if suffix in TEXT_APART:
                    apart.setdefault(suffix, []).append(line)
                else:
                    output.append(line)
                rendered += 1
            for suffix, lines in sorted(apart.items()):
                output.append(f"# HELP {metric.name}{suffix} {help_text}\n")
                output.append(f"# TYPE {metric.name}{suffix} gauge\n")
                output.extend(lines)
        self._forget_gone(rendered)
        return "".join(output).encode()

    def _line(self, sample: Sample) -> str:
        timestamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{self._prefix(sample)}{go_float(sample.value)}{timestamp}\n"

    def openmetrics(self) -> bytes:
        """OpenMetrics 1.0.0 with exemplars, without `_created` samples."""
        output: list[str] = []
        rendered = 0
        for metric in self.registry.collect():
            output.append(f"# HELP {metric.name} {_escape_value(metric.documentation)}\n")
            output.append(f"# TYPE {metric.name} {metric.type}\n")
            if metric.unit:
                output.append(f"# UNIT {metric.name} {metric.unit}\n")
            for sample in metric.samples:
                if sample.name == metric.name + "_created" or sample.native_histogram:
                    continue
                output.append(self._openmetrics_line(metric, sample))
                rendered += 1
        output.append("# EOF\n")
        self._forget_gone(rendered)
        return "".join(output).encode()

    def _openmetrics_line(self, metric: Metric, sample: Sample) -> str:
        timestamp = "" if sample.timestamp is None else f" {sample.timestamp}"
        exemplar = ""
        if sample.exemplar:
            exemplar = _compose_exemplar_string(metric, sample, sample.exemplar)
        return f"{self._prefix(sample)}{go_float(sample.value)}{timestamp}{exemplar}\n"

    def render(self, accept: str) -> tuple[bytes, str]:
        """The page in the format the scraper's Accept header prefers, and its content type."""
        if wants_openmetrics(accept):
            return self.openmetrics(), OPENMETRICS_CONTENT_TYPE
        return self.text(), TEXT_CONTENT_TYPE
