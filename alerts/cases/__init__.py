"""promtool unit tests as data: input series, then at given times which alerts fire, exactly.

Each module here holds the scenarios of one alert group; `alerts build` writes them to
`alerts/tests/<module>.yml`, which `promtool test rules` runs against the generated rules.yml.
Expected labels and annotations are spelled out literally (not derived from the rules), so a
changed threshold, template or label shows up as a failing test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.yamltext import YamlValue

RUNBOOKS = "docs/runbooks.md#"
JOB = {"job": "tindexer"}
INSTANCE = {"job": "tindexer", "instance": "w1:9464"}


@dataclass(frozen=True)
class Fires:
    """One firing alert: its full label set (without alertname) and every annotation."""

    labels: dict[str, str]
    summary: str
    description: str
    runbook: str  # the anchor in docs/runbooks.md

    def document(self) -> dict[str, YamlValue]:
        return {
            "exp_labels": dict(self.labels),
            "exp_annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": RUNBOOKS + self.runbook,
            },
        }


@dataclass(frozen=True)
class Check:
    """At `at`, exactly `fires` of `alert` are firing (none: it must not fire)."""

    at: str
    alert: str
    fires: tuple[Fires, ...] = ()

    def document(self) -> dict[str, YamlValue]:
        return {
            "eval_time": self.at,
            "alertname": self.alert,
            "exp_alerts": [f.document() for f in self.fires],
        }


@dataclass(frozen=True)
class Value:
    """At `at`, `expr` (e.g. a recording rule) returns exactly these samples."""

    at: str
    expr: str
    samples: tuple[tuple[str, float], ...]

    def document(self) -> dict[str, YamlValue]:
        return {
            "expr": self.expr,
            "eval_time": self.at,
            "exp_samples": [{"labels": labels, "value": value} for labels, value in self.samples],
        }


@dataclass(frozen=True)
class Scenario:
    """What the series look like (promtool's expanding notation) and what must follow."""

    about: str  # why this scenario exists; kept in Python, promtool 2.42 has no name field
    series: tuple[tuple[str, str], ...]
    checks: tuple[Check, ...] = ()
    values: tuple[Value, ...] = ()
    interval: str = "1m"

    def document(self) -> dict[str, YamlValue]:
        doc: dict[str, YamlValue] = {
            "interval": self.interval,
            "input_series": [{"series": s, "values": v} for s, v in self.series],
        }
        if self.checks:
            doc["alert_rule_test"] = [c.document() for c in self.checks]
        if self.values:
            doc["promql_expr_test"] = [v.document() for v in self.values]
        return doc


@dataclass(frozen=True)
class Suite:
    """One test file."""

    name: str
    scenarios: tuple[Scenario, ...]
    evaluation_interval: str = "1m"
    rule_files: tuple[str, ...] = field(default=("../rules.yml",))

    def document(self) -> dict[str, YamlValue]:
        return {
            "rule_files": list(self.rule_files),
            "evaluation_interval": self.evaluation_interval,
            "tests": [s.document() for s in self.scenarios],
        }


def labels(base: dict[str, str], **more: str) -> dict[str, str]:
    return {**base, **more}
