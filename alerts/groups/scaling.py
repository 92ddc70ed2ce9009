"""Is worker capacity the bottleneck: replicas pinned at max while the backlog grows."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, needs, selector


def group(config: AlertConfig) -> Group:
    s = selector(config.job_selector)
    return Group(
        "tindexer-scaling",
        (
            Alert(
                name="TindexerReplicasPinnedAtMax",
                expr=(
                    f"max by (chain) (tindexer_replicas_current{s})\n"
                    f">= max by (chain) (tindexer_replicas_max{s})\n"
                    f"and on (chain)\n"
                    f"max by (chain) (deriv(tindexer_chain_missing_blocks{s}"
                    f"[{config.replicas_window}])) > 0"
                ),
                for_=config.replicas_pinned_for,
                severity="warning",
                summary="A chain runs at max_replicas and its backlog still grows.",
                description=(
                    "Chain {{ $labels.chain }} has run {{ $value }} worker replicas, its "
                    f"max_replicas, for {config.replicas_pinned_for} while its backlog grew."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
        ),
    )
