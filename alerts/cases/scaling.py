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


def held(instance: str) -> Fires:
    return Fires(
        {"instance": instance, "severity": "warning"},
        "A worker is held at its memory budget.",
        f"Worker {instance} has had batches waiting for room in its memory budget (1.5 waiting"
        " on average) for 30m: its throughput is bounded by the budget.",
        "tindexerworkeratmemorybudget",
    )


MiB = 1024 * 1024


def worker(instance: str, waited: str, in_flight: str) -> tuple[tuple[str, str], ...]:
    labels = f'job="tindexer",instance="{instance}"'
    return (
        (f"tindexer_worker_budget_wait_seconds_total{{{labels}}}", waited),
        (f"tindexer_worker_in_flight_bytes{{{labels}}}", in_flight),
        (f"tindexer_worker_memory_budget_bytes{{{labels}}}", f"{128 * MiB}x80"),
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
        Scenario(
            "w1 waits 1.5 batch-seconds per second at a full budget; w2 is full but nothing"
            " waits (the budget fits its work); w3 waits as much while far below its budget"
            " (one batch larger than the budget runs alone)",
            (
                *worker("w1:9464", "0+90x80", f"{120 * MiB}x80"),
                *worker("w2:9464", "0x80", f"{127 * MiB}x80"),
                *worker("w3:9464", "0+90x80", f"{10 * MiB}x80"),
            ),
            (
                Check("25m", "TindexerWorkerAtMemoryBudget"),  # pending
                Check("50m", "TindexerWorkerAtMemoryBudget", (held("w1:9464"),)),
            ),
        ),
    ),
)
