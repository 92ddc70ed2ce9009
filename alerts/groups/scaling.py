"""Is worker capacity the bottleneck: replicas pinned at max while the backlog grows, or a
worker held at its memory budget."""

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
            Alert(
                name="TindexerWorkerAtMemoryBudget",
                expr=(
                    f"max by (instance) (rate(tindexer_worker_budget_wait_seconds_total{s}"
                    f"[{config.memory_budget_window}])) >= {config.memory_budget_waiting}\n"
                    f"and on (instance)\n"
                    f"max by (instance) (max_over_time(tindexer_worker_in_flight_bytes{s}"
                    f"[{config.memory_budget_window}])\n"
                    f"/ tindexer_worker_memory_budget_bytes{s}) >= {config.memory_budget_fill}"
                ),
                for_=config.memory_budget_for,
                severity="warning",
                summary="A worker is held at its memory budget.",
                description=(
                    "Worker {{ $labels.instance }} has had batches waiting for room in its"
                    f" memory budget ({{{{ $value | humanize }}}} waiting on average) for"
                    f" {config.memory_budget_for}: its throughput is bounded by the budget."
                ),
                depends_on=needs("postgres", "temporal"),
            ),
        ),
    )
