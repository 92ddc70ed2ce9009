"""The shapes of rules as code: alerting and recording rules, groups, and their YAML form."""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.yamltext import YamlValue

SEVERITIES = ("critical", "warning")  # critical pages, warning makes a ticket
DEPENDENCIES = ("postgres", "temporal")  # what an alert needs up; Alertmanager inhibits on it


@dataclass(frozen=True)
class Alert:
    """An alerting rule. `summary` is one static sentence; `description` a template with the
    chain (or instance) and the value. `depends_on` maps what must be up for the alert to be
    meaningful to extra label regexes that narrow it (often none): the Alertmanager config
    inhibits the alert while that dependency's down alert fires."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    depends_on: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity must be one of {SEVERITIES}")
        if not self.name.startswith("Tindexer"):
            raise ValueError(f"{self.name}: alert names start with Tindexer")
        unknown = set(self.depends_on) - set(DEPENDENCIES)
        if unknown:
            raise ValueError(f"{self.name}: unknown dependencies {sorted(unknown)}")


@dataclass(frozen=True)
class Record:
    """A recording rule, named level:metric:operation."""

    name: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name.count(":") != 2:
            raise ValueError(f"{self.name}: recording rules are named level:metric:operation")


def needs(*dependencies: str) -> dict[str, dict[str, str]]:
    """`depends_on` for an alert that depends on these, whatever its labels."""
    return {dependency: {} for dependency in dependencies}


def selector(job_selector: str, *matchers: str) -> str:
    """A label selector: the job's, plus `matchers` (e.g. 'outcome="ok"')."""
    return "{" + ",".join((job_selector, *matchers)) + "}"


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Alert | Record, ...]
    interval: str | None = None

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(r for r in self.rules if isinstance(r, Alert))


def runbook_anchor(alert_name: str) -> str:
    """The anchor of the alert's `## Name` heading in docs/runbooks.md (GitHub's slug)."""
    return alert_name.lower()


def runbook_url(base: str, alert_name: str) -> str:
    return f"{base}#{runbook_anchor(alert_name)}"


def rule_document(rule: Alert | Record, runbook_base: str) -> dict[str, YamlValue]:
    """One rule as Prometheus reads it."""
    if isinstance(rule, Record):
        doc: dict[str, YamlValue] = {"record": rule.name, "expr": rule.expr}
        if rule.labels:
            doc["labels"] = dict(rule.labels)
        return doc
    return {
        "alert": rule.name,
        "expr": rule.expr,
        "for": rule.for_,
        "labels": {"severity": rule.severity, **rule.labels},
        "annotations": {
            "summary": rule.summary,
            "description": rule.description,
            "runbook_url": runbook_url(runbook_base, rule.name),
        },
    }


def group_document(group: Group, runbook_base: str) -> dict[str, YamlValue]:
    doc: dict[str, YamlValue] = {"name": group.name}
    if group.interval:
        doc["interval"] = group.interval
    doc["rules"] = [rule_document(rule, runbook_base) for rule in group.rules]
    return doc
