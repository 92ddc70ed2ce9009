"""One module per alert group; `all_groups(config)` lists them in the order of rules.yml."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.groups import (
    availability,
    errors,
    postgres,
    progress,
    provider,
    scaling,
    slo,
    temporal_server,
    witnesses,
)
from alerts.rules import Group


def all_groups(config: AlertConfig) -> list[Group]:
    return [
        availability.group(config),
        progress.group(config),
        provider.group(config),
        witnesses.group(config),
        errors.group(config),
        temporal_server.group(config),
        postgres.group(config),
        scaling.group(config),
        *slo.groups(config),
    ]
