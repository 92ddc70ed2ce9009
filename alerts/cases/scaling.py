"""promtool cases for alerts/groups/scaling.py."""

from __future__ import annotations

from alerts.cases import Check, Fires, Scenario, Suite

J = 'job="tindexer",instance="w1:9464"'

PINNED = Fires(
    {"chain": "main", "severity": "warning"},
    "A chain runs at max_replicas and its backlog still grows.",
    "Chain main has run 4 worker replicas, its max_replicas, for 30m while its backlog grew.",
    "tindexerreplicaspinnedatmax",
)


def chain(name: str, current: int, maximum: int, missing: str) -> tuple[tuple[str, str], ...]:
    return (
        (f'tindexer_replicas_current{{{J},chain="{name}"}}', f"{current}x60"),
        (f'tindexer_replicas_max{{{J},chain="{name}"}}', f"{maximum}x60"),
        (f'tindexer_chain_missing_blocks{{{J},chain="{name}"}}', missing),
    )


SUITE = Suite(
    "scaling",
    (
        Scenario(
            "main is at max with a growing backlog; side has room to scale; calm's backlog "
            "shrinks at max",
            (
                *chain("main", 4, 4, "100000+500x60"),
                *chain("side", 2, 4, "100000+500x60"),
                *chain("calm", 4, 4, "100000-500x60"),
            ),
            (
                Check("20m", "TindexerReplicasPinnedAtMax"),  # pending
                Check("40m", "TindexerReplicasPinnedAtMax", (PINNED,)),
            ),
        ),
    ),
)
