"""The Alertmanager config users start from: routing by severity, grouping, inhibition.

Inhibitions are derived from each alert's `depends_on`, so a new alert that needs PostgreSQL or
Temporal is silenced with them without anyone editing the Alertmanager config by hand. The
end-to-end test runs this same config with its receivers pointed at a webhook in the test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts.rules import Alert, Group
from alerts.yamltext import YamlValue

# The alert that says a dependency is down; while it fires, the alerts that need it are noise.
DOWN_ALERTS = {"postgres": "TindexerPostgresDown", "temporal": "TindexerTemporalUnreachable"}
PAGER, TICKETS = "pager", "tickets"


@dataclass(frozen=True)
class Timing:
    """How soon and how often Alertmanager notifies (production values; tests shorten them)."""

    group_wait: str = "30s"  # gather alerts of one incident before the first notification
    group_interval: str = "5m"  # then batch what joins the group
    page_repeat_interval: str = "4h"  # an unresolved page is repeated every shift-ish
    ticket_repeat_interval: str = "24h"  # a ticket once a day is enough


EXAMPLE_RECEIVERS: dict[str, dict[str, YamlValue]] = {
    PAGER: {"pagerduty_configs": [{"routing_key": "REPLACE_WITH_PAGERDUTY_INTEGRATION_KEY"}]},
    TICKETS: {"webhook_configs": [{"url": "http://127.0.0.1:9095/tickets", "send_resolved": True}]},
}


def inhibit_rules(groups: Iterable[Group]) -> list[dict[str, YamlValue]]:
    """One rule per dependency for alerts that need it whatever their labels, one per narrowed
    alert (e.g. collector failures only for the collectors that read the dependency)."""
    alerts: list[Alert] = [a for g in groups for a in g.alerts]
    rules: list[dict[str, YamlValue]] = []
    for dependency, source in DOWN_ALERTS.items():
        plain = sorted(
            {a.name for a in alerts if dependency in a.depends_on and not a.depends_on[dependency]}
        )
        source_matchers: list[YamlValue] = [f'alertname="{source}"']
        if plain:
            rules.append(
                {
                    "source_matchers": source_matchers,
                    "target_matchers": [f'alertname=~"{"|".join(plain)}"'],
                }
            )
        narrowed = {
            a.name: a.depends_on[dependency] for a in alerts if a.depends_on.get(dependency)
        }
        for name, matchers in sorted(narrowed.items()):
            target: list[YamlValue] = [f'alertname="{name}"']
            target += [f'{label}=~"{regex}"' for label, regex in sorted(matchers.items())]
            rules.append({"source_matchers": source_matchers, "target_matchers": target})
    return rules


def alertmanager_config(
    groups: Iterable[Group],
    receivers: Mapping[str, Mapping[str, YamlValue]] = EXAMPLE_RECEIVERS,
    timing: Timing = Timing(),
) -> dict[str, YamlValue]:
    """Critical alerts page, warnings make tickets; grouped by alert name and chain."""
    return {
        "route": {
            "receiver": TICKETS,
            "group_by": ["alertname", "chain"],
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "repeat_interval": timing.ticket_repeat_interval,
            "routes": [
                {
                    "receiver": PAGER,
                    "matchers": ['severity="critical"'],
                    "repeat_interval": timing.page_repeat_interval,
                },
                {"receiver": TICKETS, "matchers": ['severity="warning"']},
            ],
        },
        "inhibit_rules": inhibit_rules(groups),
        "receivers": [{"name": name, **dict(config)} for name, config in receivers.items()],
    }
