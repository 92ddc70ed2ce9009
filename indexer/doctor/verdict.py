"""A verdict: which component throttles, the evidence, the metric it came from, what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CRITICAL = "critical"  # something is down: nothing is indexed until it is back
WARNING = "warning"  # something throttles: indexing is slower than it could be
NOTE = "note"  # something the doctor could not see, so it did not judge
OK = "ok"  # nothing above a threshold
SEVERITIES = (CRITICAL, WARNING, NOTE, OK)  # most urgent first: the order verdicts are listed in

RUNBOOKS = "docs/runbooks.md"


def runbook(alert: str) -> str:
    """The runbook section of an alert that covers the same problem."""
    return f"{RUNBOOKS}#{alert.lower()}"


@dataclass
class Verdict:
    component: str  # temporal-frontend, temporal-client, provider, postgresql, worker-memory, …
    severity: str
    message: str
    metrics: list[str]  # every metric the verdict was read from
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str = ""
    runbook: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "severity": self.severity,
            "message": self.message,
            "metric": ", ".join(self.metrics),
            "metrics": list(self.metrics),
            "evidence": self.evidence,
            "advice": self.advice,
            "runbook": self.runbook,
        }


def per_second(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def figure(value: float) -> str:
    """A count or rate as a person reads it: 38, 4.2, 0.31."""
    if value >= 10 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"
