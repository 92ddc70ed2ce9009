"""PostgreSQL health collectors against real servers: exact values, outages, hangs, fast scrapes.

Tests that count server-wide things (connections, waiting locks, transactions) or stop the
server use a private embedded PostgreSQL that nothing else touches; per-database facts
(deadlocks, size) and the pool use the session's server through `database_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from glob import glob
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from exporter.collectors.pool import PoolCollector
from exporter.collectors.postgres import KNOWN_STATES, PostgresHealthCollector
from exporter.metrics import Metrics
from exporter.server import start_metrics_server
from indexer.embedded import embedded_postgres, free_port
from tests.support.waiting import wait_until


class PrivatePostgres:
    """An embedded PostgreSQL only this module uses, so it can be stopped and counted exactly."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = ""
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> None:
        self._stack = contextlib.ExitStack()
        url = self._stack.enter_context(embedded_postgres(self.data_dir))
        assert self.url in ("", url), "a restarted server must keep its address"
        self.url = url

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(tmp_path_factory.mktemp("private-pg") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of `name`, keyed by its sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


def connections(metrics: Metrics) -> dict[str, float]:
    return {dict(k)["state"]: v for k, v in samples(metrics, "tindexer_pg_connections").items()}


async def refresh_until(
    collector: PostgresHealthCollector, done: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Refresh until `done()` holds: server-side effects (backend exit, stats flush) lag."""
    deadline = time.monotonic() + timeout
    while True:
        assert await collector.refresh_once()
        if done():
            return
        assert time.monotonic() < deadline, "the collector never saw the expected state"
        await asyncio.sleep(0.05)


async def scrape(url: str, times: int) -> tuple[list[float], str]:
    """GET /metrics `times` times; the latencies and the last body."""
    latencies, body = [], ""
    async with aiohttp.ClientSession() as session:
        for _ in range(times):
            started = time.perf_counter()
            async with session.get(url) as response:
                assert response.status == 200
                body = await response.text()
            latencies.append(time.perf_counter() - started)
    return latencies, body


# --- a private server: exact server-wide counts, outages, hangs --------------------------------


async def test_twenty_extra_connections_move_the_count_by_exactly_twenty(
    private_pg: PrivatePostgres,
) -> None:
    metrics = Metrics(CollectorRegistry())
    collector = PostgresHealthCollector(metrics, private_pg.url)
    admin = await asyncpg.connect(private_pg.url)
    try:
        # Only the collector (active, reading) and `admin` (idle) remain once earlier
        # tests' backends have exited.
        await refresh_until(collector, lambda: sum(connections(metrics).values()) == 2)
        before = connections(metrics)
        assert set(before) == set(KNOWN_STATES)  # every known state, zeros included
        assert (before["active"], before["idle"], before["idle in transaction"]) == (1, 1, 0)

        extra = [await asyncpg.connect(private_pg.url) for _ in range(20)]
        try:
            assert await collector.refresh_once()
            during = connections(metrics)
        finally:
            await asyncio.gather(*(conn.close() for conn in extra))
        assert sum(during.values()) - sum(before.values()) == 20
        assert during["idle"] - before["idle"] == 20
        max_connections = int(await admin.fetchval("SHOW max_connections"))
        assert value(metrics, "tindexer_pg_max_connections") == max_connections
        assert value(metrics, "tindexer_pg_connection_utilization_ratio") == 22 / max_connections

        await refresh_until(collector, lambda: sum(connections(metrics).values()) == 2)
        assert samples(metrics, "tindexer_pg_statement_calls_total") == {}  # no extension here
    finally:
        await admin.close()
        await collector.close()


async def test_a_waiting_lock_and_an_open_transaction_are_seen(
    private_pg: PrivatePostgres,
) -> None:
    metrics = Metrics(CollectorRegistry())
    collector = PostgresHealthCollector(metrics, private_pg.url)
    holder = await asyncpg.connect(private_pg.url)
    waiter = await asyncpg.connect(private_pg.url)
    try:
        await holder.execute("CREATE TABLE IF NOT EXISTS locked (id int)")
        assert await collector.refresh_once()
        assert value(metrics, "tindexer_pg_locks_waiting") == 0
        assert value(metrics, "tindexer_pg_lock_wait_oldest_seconds") == 0
        assert value(metrics, "tindexer_pg_longest_transaction_seconds") == 0

        began = time.monotonic()
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.create_task(waiter.fetch("SELECT * FROM locked"))
        waiter_pid = waiter.get_server_pid()

        async def waiting() -> bool:
            sql = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = $1"
            return bool(await holder.fetchval(sql, waiter_pid))

        await wait_until(waiting, 10, "the waiter to queue for the lock", interval=0.02)
        await asyncio.sleep(0.3)
        assert await collector.refresh_once()
        refreshed = time.monotonic()
        assert value(metrics, "tindexer_pg_locks_waiting") == 1
        oldest = value(metrics, "tindexer_pg_lock_wait_oldest_seconds")
        assert oldest is not None and 0.3 <= oldest <= refreshed - began
        longest = value(metrics, "tindexer_pg_longest_transaction_seconds")
        assert longest is not None and oldest <= longest <= refreshed - began

        await transaction.rollback()
        assert await blocked == []
        assert await collector.refresh_once()
        assert value(metrics, "tindexer_pg_locks_waiting") == 0
        assert value(metrics, "tindexer_pg_lock_wait_oldest_seconds") == 0
        assert value(metrics, "tindexer_pg_longest_transaction_seconds") == 0
    finally:
        await waiter.close()
        await holder.close()
        await collector.close()


async def test_stopping_the_server_sets_up_to_zero_and_scrapes_stay_fast(
    private_pg: PrivatePostgres,
) -> None:
    metrics = Metrics(CollectorRegistry())
    collector = PostgresHealthCollector(metrics, private_pg.url, timeout=2.0)
    port = free_port()
    runner = await start_metrics_server(metrics.registry, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert await collector.refresh_once()
        assert value(metrics, "tindexer_pg_up") == 1
        size_while_up = value(metrics, "tindexer_pg_database_size_bytes")

        await asyncio.to_thread(private_pg.stop)
        try:
            # First the open connection breaks, then reconnecting fails: neither escapes.
            assert not await collector.refresh_once()
            assert value(metrics, "tindexer_pg_up") == 0
            assert not await collector.refresh_once()
            assert value(metrics, "tindexer_collector_errors_total", collector="postgres") == 2
            latencies, body = await scrape(url, 20)
            assert "tindexer_pg_up 0.0" in body.splitlines()
            assert max(latencies) < 0.25, latencies
            # The last good values stay, with pg_up 0 and an old last-success time beside them.
            assert value(metrics, "tindexer_pg_database_size_bytes") == size_while_up
        finally:
            await asyncio.to_thread(private_pg.start)

        assert await collector.refresh_once()
        assert value(metrics, "tindexer_pg_up") == 1
        assert value(metrics, "tindexer_collector_errors_total", collector="postgres") == 2
    finally:
        await runner.cleanup()
        await collector.close()


async def test_scrapes_do_not_wait_for_a_hung_server(private_pg: PrivatePostgres) -> None:
    metrics = Metrics(CollectorRegistry())
    collector = PostgresHealthCollector(metrics, private_pg.url, timeout=1.0)
    port = free_port()
    runner = await start_metrics_server(metrics.registry, "127.0.0.1", port)
    try:
        assert await collector.refresh_once()
        hung_pid = collector.backend_pid
        assert hung_pid is not None
        os.kill(hung_pid, signal.SIGSTOP)  # the collector's backend stops answering mid-query
        try:
            refresh = asyncio.create_task(collector.refresh_once())
            await asyncio.sleep(0.2)
            latencies, body = await scrape(f"http://127.0.0.1:{port}/metrics", 20)
            assert not refresh.done(), "the scrapes must have run while the refresh hung"
            assert max(latencies) < 0.25, latencies
            assert "tindexer_pg_up 1.0" in body.splitlines()  # cached, not waited for
            assert await refresh is False  # the collector's timeout ended the hang
        finally:
            os.kill(hung_pid, signal.SIGCONT)
        assert value(metrics, "tindexer_pg_up") == 0
        assert value(metrics, "tindexer_collector_errors_total", collector="postgres") == 1

        assert await collector.refresh_once()  # on a new connection
        assert collector.backend_pid != hung_pid
        assert value(metrics, "tindexer_pg_up") == 1
    finally:
        await runner.cleanup()
        await collector.close()


# --- the session's server: per-database facts and the pool -------------------------------------


async def test_database_facts_match_the_server(database_url: str) -> None:
    metrics = Metrics(CollectorRegistry())
    collector = PostgresHealthCollector(metrics, database_url)
    conn = await asyncpg.connect(database_url)
    try:
        before = time.time()
        assert await collector.refresh_once()
        after = time.time()
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        max_connections = int(await conn.fetchval("SHOW max_connections"))
        assert value(metrics, "tindexer_pg_up") == 1
        assert value(metrics, "tindexer_pg_database_size_bytes") == size
        assert value(metrics, "tindexer_pg_max_connections") == max_connections
        assert value(metrics, "tindexer_pg_deadlocks_total") == 0
        ratio = value(metrics, "tindexer_pg_cache_hit_ratio")
        assert ratio is not None and 0 < ratio <= 1
        assert set(connections(metrics)) >= set(KNOWN_STATES)
        assert value(metrics, "tindexer_pg_probe_latency_seconds_count") == 1
        last_success = value(
            metrics, "tindexer_collector_last_success_timestamp_seconds", collector="postgres"
        )
        assert last_success is not None and before <= last_success <= after
        assert value(metrics, "tindexer_collector_errors_total", collector="postgres") is None
    finally:
        await conn.close()
        await collector.close()


async def test_a_deadlock_counts_exactly_once(database_url: str) -> None:
    metrics = Metrics(CollectorRegistry())
    collector = PostgresHealthCollector(metrics, database_url)
    observer = await asyncpg.connect(database_url)
    first, second = [await asyncpg.connect(database_url) for _ in range(2)]
    try:
        await observer.execute(
            "CREATE TABLE pair (id int PRIMARY KEY, v int); INSERT INTO pair VALUES (1, 0), (2, 0)"
        )
        assert await collector.refresh_once()
        assert value(metrics, "tindexer_pg_deadlocks_total") == 0

        await first.execute("BEGIN; UPDATE pair SET v = 1 WHERE id = 1")
        await second.execute("BEGIN; UPDATE pair SET v = 1 WHERE id = 2")
        crossing = asyncio.create_task(first.execute("UPDATE pair SET v = 2 WHERE id = 2"))

        async def first_waits() -> bool:
            sql = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = $1"
            return bool(await observer.fetchval(sql, first.get_server_pid()))

        await wait_until(first_waits, 10, "the first transaction to wait", interval=0.02)
        outcomes = await asyncio.gather(
            crossing, second.execute("UPDATE pair SET v = 2 WHERE id = 1"), return_exceptions=True
        )
        assert [type(o) for o in outcomes].count(asyncpg.DeadlockDetectedError) == 1
        await first.close()  # a backend flushes its statistics when it exits
        await second.close()

        await refresh_until(collector, lambda: value(metrics, "tindexer_pg_deadlocks_total") == 1)
        assert await collector.refresh_once()
        assert value(metrics, "tindexer_pg_deadlocks_total") == 1
    finally:
        for conn in (first, second, observer):
            await conn.close()
        await collector.close()


async def test_pool_connections_in_use_idle_and_max(database_url: str) -> None:
    metrics = Metrics(CollectorRegistry())
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=5)
    collector = PoolCollector(metrics, pool)

    def pool_state() -> dict[str, float]:
        raw = samples(metrics, "tindexer_pg_pool_connections")
        return {dict(k)["state"]: v for k, v in raw.items()}

    try:
        assert await collector.refresh_once()
        assert pool_state() == {"in_use": 0, "idle": 2, "max": 5}
        held = [await pool.acquire() for _ in range(3)]
        assert await collector.refresh_once()
        assert pool_state() == {"in_use": 3, "idle": 0, "max": 5}
        await pool.release(held.pop())
        assert await collector.refresh_once()
        assert pool_state() == {"in_use": 2, "idle": 1, "max": 5}
        for conn in held:
            await pool.release(conn)
    finally:
        await pool.close()


# --- pg_stat_statements: Debian's PostgreSQL with the library preloaded ------------------------


@contextlib.contextmanager
def postgres_with_statements() -> Iterator[str]:
    """A throwaway Debian PostgreSQL with pg_stat_statements preloaded (pgserver lacks it)."""
    bins = sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    libs = glob("/usr/lib/postgresql/*/lib/pg_stat_statements.so")
    if not bins or not libs:
        pytest.skip("Debian's postgresql and postgresql-contrib are not installed")
    bin_dir = Path(bins[-1]).parent
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory(prefix="tindexer-pgss-") as tmp:
        if as_user:  # PostgreSQL refuses to run as root
            shutil.chown(tmp, "postgres")
        data = f"{tmp}/data"
        run = [*as_user, str(bin_dir / "pg_ctl"), "-D", data]
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", data, "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        options = f"-h '' -k {tmp} -c shared_preload_libraries=pg_stat_statements -c fsync=off"
        subprocess.run([*run, "-w", "-o", options, "-l", f"{tmp}/log", "start"], check=True)
        try:
            yield f"postgresql://postgres@/postgres?host={tmp}"
        finally:
            subprocess.run([*run, "-w", "-m", "immediate", "stop"], capture_output=True)


async def test_top_statements_are_ranked_truncated_and_bounded() -> None:
    with postgres_with_statements() as url:
        metrics = Metrics(CollectorRegistry())
        collector = PostgresHealthCollector(metrics, url, top_statements=3)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE EXTENSION pg_stat_statements")
            for _ in range(3):
                await conn.execute(
                    "SELECT pg_sleep(0.1) AS a_deliberately_long_column_name,\n"
                    "       'padding' AS another_long_column_name"
                )
            assert await collector.refresh_once()
            label = "SELECT pg_sleep($1) AS a_deliberately_long_column_name, $2 …"
            assert value(metrics, "tindexer_pg_statement_calls_total", rank="1", query=label) == 3
            seconds = value(metrics, "tindexer_pg_statement_seconds_total", rank="1", query=label)
            assert seconds is not None and 0.3 <= seconds < 1.0
            calls = samples(metrics, "tindexer_pg_statement_calls_total")
            assert sorted(dict(k)["rank"] for k in calls) == ["1", "2", "3"]
            assert all(len(dict(k)["query"]) <= 60 for k in calls)

            collector.top_statements = 1  # ranks that fall out of the top N disappear
            assert await collector.refresh_once()
            assert list(samples(metrics, "tindexer_pg_statement_calls_total").values()) == [3]
        finally:
            await conn.close()
            await collector.close()
