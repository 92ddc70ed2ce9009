"""Verdicts on the indexer's own dependencies: its providers, PostgreSQL, its memory budget.

Every worker process serves its own /metrics; counters are summed over them (each worker sends
its own share of a provider's requests), server-wide PostgreSQL gauges take the worst, and a
process's pool or memory budget is judged per process.
"""

from __future__ import annotations

import math
from collections import defaultdict

from indexer.doctor.scrape import Change, label
from indexer.doctor.verdict import CRITICAL, WARNING, Verdict, figure, per_second, runbook

RPC_REQUESTS = "tindexer_rpc_requests_total"
PROVIDER_UP = "tindexer_provider_up"
PG_UP = "tindexer_pg_up"
# Set by every refresh of a collector: a process without the PostgreSQL health collector (the
# `tindexer workers` supervisor) exports tindexer_pg_up at 0 without having looked.
COLLECTOR_DURATION = "tindexer_collector_duration_seconds"
PG_LOCKS_WAITING = "tindexer_pg_locks_waiting"
PG_LOCK_WAIT_OLDEST = "tindexer_pg_lock_wait_oldest_seconds"
PG_LONGEST_TRANSACTION = "tindexer_pg_longest_transaction_seconds"
PG_QUERY_DURATION = "tindexer_pg_query_duration_seconds"
PG_POOL = "tindexer_pg_pool_connections"
PG_UTILIZATION = "tindexer_pg_connection_utilization_ratio"
BUDGET = "tindexer_worker_memory_budget_bytes"
IN_FLIGHT = "tindexer_worker_in_flight_bytes"
BUDGET_WAIT = "tindexer_worker_budget_wait_seconds_total"

# The adaptive limiter probes up to a provider's limit, so a few 429s per hundred requests are
# by design (the TindexerRPCRateLimited alert's 5 %); above that the plan's quota is too small.
PROVIDER_429_RATIO = 0.05
# One or two 429s in a short window are the limiter finding the edge, not a verdict.
MIN_PROVIDER_429S = 3
# A COPY or upsert may wait milliseconds for a lock another batch holds; a wait of a whole
# second is a holder that stalls the stores behind it.
LOCK_WAIT_SECONDS = 1.0
# The old plan's bar (and the TindexerPostgresQueryLatencyHigh alert's): p95 under 50 ms.
QUERY_P95_SECONDS = 0.05
# Fewer queries than this in the window make a p95 one slow query's opinion.
MIN_QUERIES_FOR_P95 = 20
# Above 80 % of max_connections a burst of new workers or a migration fails to connect.
CONNECTION_UTILIZATION = 0.8
# On average at least one batch waiting for room at every moment, while the bytes in flight
# fill most of the budget: the TindexerWorkerAtMemoryBudget alert's two conditions.
BUDGET_WAITING_PER_SECOND = 1.0
BUDGET_FILL = 0.8


def _window(changes: list[Change]) -> float:
    return max((change.seconds for change in changes), default=0.0)


def provider_rate_limits(indexer: list[Change]) -> list[Verdict]:
    """A provider answering 429 to more than PROVIDER_429_RATIO of its requests, by its name."""
    sent: dict[tuple[str, str], float] = defaultdict(float)
    limited: dict[tuple[str, str], float] = defaultdict(float)
    for change in indexer:
        for labels, count in change.increase(RPC_REQUESTS).items():
            key = (label(labels, "chain"), label(labels, "provider"))
            sent[key] += count
            if label(labels, "outcome") == "rate_limited":
                limited[key] += count
    seconds = _window(indexer)
    verdicts = []
    for (chain, provider), refused in sorted(limited.items(), key=lambda item: -item[1]):
        ratio = refused / sent[(chain, provider)] if sent[(chain, provider)] else 0.0
        if refused < MIN_PROVIDER_429S or ratio < PROVIDER_429_RATIO:
            continue
        message = (
            f"provider `{provider}` (chain {chain}) answers 429 to {ratio:.0%} of requests:"
            f" {int(refused)} of {int(sent[(chain, provider)])} over the last {seconds:.0f} s"
        )
        verdicts.append(
            Verdict(
                component="provider",
                severity=WARNING,
                message=message,
                metrics=[RPC_REQUESTS],
                evidence={
                    "chain": chain,
                    "provider": provider,
                    "requests": int(sent[(chain, provider)]),
                    "rate_limited": int(refused),
                    "ratio": round(ratio, 4),
                    "window_seconds": round(seconds, 3),
                },
                advice="raise the provider plan's quota (and its max_requests_per_second), add"
                " a second provider, or lower the chain's rpc_max_concurrency",
                runbook=runbook("TindexerRPCRateLimited"),
            )
        )
    return verdicts


def providers_down(indexer: list[Change]) -> list[Verdict]:
    """Providers a worker took out of rotation after repeated failures."""
    down = sorted(
        {
            (label(labels, "chain"), label(labels, "provider"))
            for change in indexer
            for labels, up in change.latest(PROVIDER_UP).items()
            if up == 0
        }
    )
    return [
        Verdict(
            component="provider",
            severity=WARNING,
            message=f"provider `{provider}` (chain {chain}) is out of rotation: its circuit"
            " opened after repeated failures, and only a successful probe brings it back",
            metrics=[PROVIDER_UP],
            evidence={"chain": chain, "provider": provider, "up": 0},
            advice="check the provider's status page and its answers in the worker log",
            runbook=runbook("TindexerProviderDown"),
        )
        for chain, provider in down
    ]


def _worst(indexer: list[Change], name: str) -> float | None:
    values = [value for change in indexer for value in change.latest(name).values()]
    return max(values) if values else None


def postgres(indexer: list[Change]) -> list[Verdict]:
    """PostgreSQL down, lock waits, slow queries, exhausted pools, too many connections."""
    down = [
        change.url
        for change in indexer
        if change.latest(COLLECTOR_DURATION, collector="postgres")
        and 0 in change.latest(PG_UP).values()
    ]
    if down:
        return [
            Verdict(
                component="postgresql",
                severity=CRITICAL,
                message="PostgreSQL is down: the indexer's health check cannot connect or run",
                metrics=[PG_UP],
                evidence={"up": 0, "sources": down},
                advice="bring the database back; stores are retried, nothing is lost meanwhile",
                runbook=runbook("TindexerPostgresDown"),
            )
        ]
    verdicts = []
    waiting, oldest = _worst(indexer, PG_LOCKS_WAITING), _worst(indexer, PG_LOCK_WAIT_OLDEST)
    if waiting and oldest is not None and oldest >= LOCK_WAIT_SECONDS:
        longest = _worst(indexer, PG_LONGEST_TRANSACTION)
        verdicts.append(
            Verdict(
                component="postgresql",
                severity=WARNING,
                message=f"PostgreSQL: {int(waiting)} lock waits, oldest {figure(oldest)} s"
                + (f"; the longest open transaction is {figure(longest)} s old" if longest else ""),
                metrics=[PG_LOCKS_WAITING, PG_LOCK_WAIT_OLDEST, PG_LONGEST_TRANSACTION],
                evidence={
                    "locks_waiting": int(waiting),
                    "oldest_wait_seconds": round(oldest, 3),
                    "longest_transaction_seconds": round(longest or 0.0, 3),
                },
                advice="find the holder (pg_blocking_pids() in pg_stat_activity) and end its"
                " transaction; a migration or a manual session left open is the usual one",
                runbook=runbook("TindexerPostgresQueryLatencyHigh"),
            )
        )
    verdicts += _slow_queries(indexer)
    verdicts += _pools_exhausted(indexer)
    utilization = _worst(indexer, PG_UTILIZATION)
    if utilization is not None and utilization >= CONNECTION_UTILIZATION:
        verdicts.append(
            Verdict(
                component="postgresql",
                severity=WARNING,
                message=f"PostgreSQL: {utilization:.0%} of max_connections in use",
                metrics=[PG_UTILIZATION],
                evidence={"utilization": round(utilization, 4)},
                advice="lower pool sizes or worker count, or put PgBouncer in front",
                runbook=runbook("TindexerPostgresConnectionsHigh"),
            )
        )
    return verdicts


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile over cumulative (upper bound, count) pairs, as Prometheus computes it."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the highest finite bound, as Prometheus answers
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def _slow_queries(indexer: list[Change]) -> list[Verdict]:
    by_query: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for change in indexer:
        for labels, count in change.increase(f"{PG_QUERY_DURATION}_bucket").items():
            by_query[label(labels, "query")][float(label(labels, "le"))] += count
    seconds = _window(indexer)
    verdicts = []
    for query, buckets in sorted(by_query.items()):
        count = buckets.get(math.inf, 0.0)
        if count < MIN_QUERIES_FOR_P95:
            continue
        p95 = quantile(0.95, list(buckets.items()))
        if p95 <= QUERY_P95_SECONDS:
            continue
        verdicts.append(
            Verdict(
                component="postgresql",
                severity=WARNING,
                message=f"PostgreSQL is slow: query `{query}` p95 {p95 * 1000:.0f} ms over the"
                f" last {seconds:.0f} s ({int(count)} queries), above the"
                f" {QUERY_P95_SECONDS * 1000:.0f} ms line",
                metrics=[PG_QUERY_DURATION],
                evidence={
                    "query": query,
                    "p95_seconds": round(p95, 4),
                    "queries": int(count),
                    "window_seconds": round(seconds, 3),
                },
                advice="look for lock waits and long transactions first, then EXPLAIN the query",
                runbook=runbook("TindexerPostgresQueryLatencyHigh"),
            )
        )
    return verdicts


def _pools_exhausted(indexer: list[Change]) -> list[Verdict]:
    """A process whose pool had every connection in use at both scrapes."""
    verdicts = []
    for change in indexer:
        pool = {label(k, "state"): v for k, v in change.latest(PG_POOL).items()}
        before = {label(k, "state"): v for (name, k), v in change.before.items() if name == PG_POOL}
        size = pool.get("max", 0.0)
        if size <= 0 or pool.get("in_use", 0.0) < size or before.get("in_use", 0.0) < size:
            continue
        verdicts.append(
            Verdict(
                component="postgresql",
                severity=WARNING,
                message=f"the PostgreSQL pool of {change.url} is exhausted: {int(size)} of"
                f" {int(size)} connections in use at both scrapes, {change.seconds:.0f} s apart",
                metrics=[PG_POOL],
                evidence={"source": change.url, "in_use": int(size), "max": int(size)},
                advice="stores queue for a connection: run fewer concurrent activities per"
                " worker (--max-concurrent-activities) or make the queries faster",
            )
        )
    return verdicts


def memory_budget(indexer: list[Change]) -> list[Verdict]:
    """A worker whose batches wait for room in a budget its bytes in flight fill."""
    verdicts = []
    for change in indexer:
        budget = sum(change.latest(BUDGET).values())
        in_flight = sum(change.latest(IN_FLIGHT).values())
        waited = sum(change.increase(BUDGET_WAIT).values())
        waiting = per_second(waited, change.seconds)
        if budget <= 0 or waiting < BUDGET_WAITING_PER_SECOND or in_flight < BUDGET_FILL * budget:
            continue
        mib = 1024 * 1024
        verdicts.append(
            Verdict(
                component="worker-memory",
                severity=WARNING,
                message=f"worker memory budget full, ranges waiting: {change.url} holds"
                f" {in_flight / mib:.0f} MiB of its {budget / mib:.0f} MiB budget, and its"
                f" batches waited {figure(waiting)} s per second for room",
                metrics=[BUDGET_WAIT, IN_FLIGHT, BUDGET],
                evidence={
                    "source": change.url,
                    "budget_bytes": int(budget),
                    "in_flight_bytes": int(in_flight),
                    "waiting_seconds_per_second": round(waiting, 3),
                    "window_seconds": round(change.seconds, 3),
                },
                advice="raise worker_memory_budget_bytes (`tindexer worker --memory-budget`)"
                " while the worker's RSS stays well under its limit, or add workers",
                runbook=runbook("TindexerWorkerAtMemoryBudget"),
            )
        )
    return verdicts
