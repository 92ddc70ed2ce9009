"""Shared parts of the fault-injection suite: worker processes, exact-data checks, the report.

Every case backfills tens of thousands of simulated blocks through a real Temporal dev server
into a real PostgreSQL, injects its fault mid-run, lets the system recover by itself and then
checks the data exactly. Its figures (blocks expected and found, duplicates, time to recover,
the metric that moved during the fault) are printed and merged into bench/results/faults.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from indexer.embedded import (
    _die_with_parent,
    embedded_postgres,
    free_port,
    stop_process,
    temporal_dev_server_args,
    wait_for_port,
)
from indexer.store.db import create_pool
from indexer.store.ranges import coverage
from indexer.temporal_client import connect_temporal
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "faults.json"
# Pinned, whatever the default: a 30,000-block backfill is then 60 ranges, more than a worker
# runs at once, so a fault meets ranges in flight and ranges still waiting to be dispatched.
BLOCKS_PER_WORKFLOW = 500

# While PostgreSQL or Temporal is down, a poll of the database fails; that is not the answer.
UNAVAILABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)


# --- the sim chain's admin endpoints --------------------------------------------------------


async def sim_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}{path}", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def set_faults(url: str, **faults: float) -> None:
    await sim_post(url, "/_sim/faults", faults)


async def clear_faults(url: str) -> None:
    await set_faults(
        url,
        rate_limit_ratio=0,
        timeout_ratio=0,
        malformed_ratio=0,
        error_ratio=0,
        null_block_ratio=0,
        bad_parent_ratio=0,
        latency_seconds=0,
    )


async def sim_head(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/state") as response:
        return int((await response.json())["head"])


# --- worker processes -----------------------------------------------------------------------


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def sample_sum(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


class WorkerProcess:
    """One `tindexer worker` child polling a task queue, with /metrics on its own port."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.metrics_port = port
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until /metrics answers: the pool and client are up and the worker polls next."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}: {self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self.scrape()
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"worker not ready within {timeout}s: {self.tail()}")

    async def scrape(self) -> Samples:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as response,
        ):
            return parse_samples(await response.text())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    async def terminate(self, timeout: float) -> float:
        """SIGTERM, then wait (without blocking the loop) for the exit; seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        while self.process.poll() is None:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"worker still running {timeout}s after SIGTERM")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class WorkerProcesses:
    """Starts `tindexer worker` children; every one is killed when the test ends."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[WorkerProcess] = []

    def start(
        self,
        task_queue: str,
        database_url: str,
        temporal_address: str,
        max_concurrent_activities: int = 32,
    ) -> WorkerProcess:
        n = len(self.started)
        config = self.tmp_path / f"worker-{n}.toml"
        config.write_text(f'task_queue = "{task_queue}"\n')
        port = free_port()
        args = [sys.executable, "-m", "indexer.cli", "worker", "--config", str(config)]
        args += ["--metrics-port", str(port)]
        args += ["--max-concurrent-activities", str(max_concurrent_activities)]
        env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
        env.pop("TINDEXER_CONFIG", None)
        worker = WorkerProcess(args, env, self.tmp_path / f"worker-{n}.log", port)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()


# --- progress and the exact-data check -------------------------------------------------------


async def indexed_blocks(pool: asyncpg.Pool, chain_id: int) -> int:
    """Blocks recorded in indexed_ranges (the interval set, not the blocks table)."""
    return int(
        await pool.fetchval(
            "SELECT coalesce(sum(end_block - start_block + 1), 0) FROM indexed_ranges"
            " WHERE chain_id = $1",
            chain_id,
        )
    )


async def covered(pool: asyncpg.Pool, chain_id: int, head: int) -> bool:
    """Whether 0..head is entirely indexed; False (not an error) while PostgreSQL is away."""
    try:
        return (await coverage(pool, chain_id, 0, head)).missing_blocks == 0
    except UNAVAILABLE:
        return False


async def wait_for(
    condition: Any, timeout: float, what: str, interval: float = 0.1, diagnose: Any = None
) -> float:
    """Poll the async `condition` until true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await condition():
                return time.monotonic()
        except UNAVAILABLE:
            pass
        await asyncio.sleep(interval)
    detail = f": {await diagnose()}" if diagnose else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


async def wait_covered(harness: Harness, chain_id: int, head: int, timeout: float) -> float:
    async def gaps() -> str:
        try:
            return str((await coverage(harness.pool, chain_id, 0, head)).gaps[:10])
        except UNAVAILABLE as exc:
            return repr(exc)

    return await wait_for(
        lambda: covered(harness.pool, chain_id, head),
        timeout,
        f"blocks 0..{head} to be indexed",
        diagnose=gaps,
    )


async def assert_nothing_half_written(pool: asyncpg.Pool, chain_id: int) -> int:
    """Every stored block lies in an indexed range, every range is complete, every block has
    its transactions: what a crash may leave is whole ranges or nothing. Returns the blocks."""
    outside = await pool.fetchval(
        "SELECT count(*) FROM blocks b WHERE b.chain_id = $1 AND NOT EXISTS ("
        " SELECT 1 FROM indexed_ranges r WHERE r.chain_id = b.chain_id"
        " AND b.number BETWEEN r.start_block AND r.end_block)",
        chain_id,
    )
    assert outside == 0, f"{outside} blocks stored outside every indexed range"
    stored = await pool.fetchval("SELECT count(*) FROM blocks WHERE chain_id = $1", chain_id)
    recorded = await indexed_blocks(pool, chain_id)
    assert stored == recorded, f"indexed_ranges say {recorded} blocks, the table holds {stored}"
    short = await pool.fetchval(
        "SELECT count(*) FROM blocks b WHERE b.chain_id = $1 AND b.tx_count <> ("
        " SELECT count(*) FROM transactions t"
        " WHERE t.chain_id = b.chain_id AND t.block_number = b.number)",
        chain_id,
    )
    assert short == 0, f"{short} blocks without exactly their transactions"
    return int(stored)


@dataclass
class DataCheck:
    expected: int
    found: int
    duplicates: int


async def assert_exactly_indexed(harness: Harness, chain_id: int, url: str, head: int) -> DataCheck:
    """Blocks 0..head once each, with the chain's hashes, parents and transactions; one range."""
    counts = await harness.pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT number) AS d FROM blocks WHERE chain_id = $1",
        chain_id,
    )
    tx_counts = await harness.pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT (block_number, tx_index)) AS d"
        " FROM transactions WHERE chain_id = $1",
        chain_id,
    )
    duplicates = counts["n"] - counts["d"] + tx_counts["n"] - tx_counts["d"]
    expected = await expected_blocks(url, 0, head)
    stored = await harness.stored_blocks(chain_id)
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    wrong = sorted(n for n in expected.keys() & stored.keys() if expected[n] != stored[n])
    assert not missing, f"{len(missing)} blocks missing, first {missing[:10]}"
    assert not extra, f"{len(extra)} blocks not on the chain, first {extra[:10]}"
    assert not wrong, f"{len(wrong)} blocks differ from the chain, first {wrong[:10]}"
    assert counts["n"] == counts["d"] == head + 1
    assert duplicates == 0
    assert await harness.ranges(chain_id) == [(0, head)]
    await assert_nothing_half_written(harness.pool, chain_id)
    return DataCheck(expected=len(expected), found=counts["d"], duplicates=duplicates)


# --- the report -----------------------------------------------------------------------------


@dataclass
class FaultReport:
    case: str
    fault: str
    blocks_expected: int
    blocks_found: int
    duplicates: int
    recover_seconds: float
    total_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


_REPORTS: list[FaultReport] = []


def record(report: FaultReport) -> None:
    """Print the case's figures; with TINDEXER_FAULTS_RESULTS set, merge them into faults.json."""
    _REPORTS.append(report)
    entry = asdict(report)
    entry["recover_seconds"] = round(report.recover_seconds, 2)
    entry["total_seconds"] = round(report.total_seconds, 2)
    print(f"\nfault case {report.case}: {json.dumps(entry, sort_keys=True)}")
    if not os.environ.get("TINDEXER_FAULTS_RESULTS"):  # `make bench-faults` sets it
        return
    data: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        data = json.loads(RESULTS.read_text())
    data.setdefault("cases", {})[report.case] = entry
    data["about"] = (
        "tests/faults: one entry per fault case, rewritten by each run; recover_seconds is from"
        " the end of the fault to full coverage in PostgreSQL (2-core machine)."
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- a PostgreSQL of the test's own, which the test may stop -------------------------------


class OwnPostgres:
    """An embedded PostgreSQL (pgserver) for one test, restarted and stopped with pg_ctl."""

    def __init__(self, url: str, data_dir: Path) -> None:
        import pgserver

        self.url = url
        self.data_dir = data_dir
        self.server = pgserver.get_server(data_dir)  # the instance embedded_postgres started
        self.socket_dir = parse_qs(urlsplit(url).query)["host"][0]

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    async def restart(self) -> None:
        """A fast restart: every connection is terminated, the server is back within a second."""
        await asyncio.to_thread(self._pg_ctl, "-w", "-m", "fast", "restart")

    async def stop(self) -> None:
        await asyncio.to_thread(self._pg_ctl, "-w", "-m", "fast", "stop")

    async def start(self) -> None:
        log = str(self.server.pgdata / "log")
        options = ["-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log]
        await asyncio.to_thread(self._pg_ctl, "-w", *options, "start")

    def stop_quietly(self) -> None:
        """After a restart pgserver no longer knows the postmaster's pid: stop it ourselves."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-w", "-m", "immediate", "stop")


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    with embedded_postgres(tmp_path / "pgdata") as url:
        postgres = OwnPostgres(url, tmp_path / "pgdata")
        try:
            yield postgres
        finally:
            postgres.stop_quietly()


@pytest_asyncio.fixture(loop_scope="session")
async def own_postgres_harness(
    own_postgres: OwnPostgres, temporal_client: Client
) -> AsyncIterator[Harness]:
    """A harness whose pool is on the test's own PostgreSQL."""
    pool = await create_pool(own_postgres.url, max_size=20)
    harness = Harness(pool, temporal_client)
    try:
        yield harness
    finally:
        await harness.terminate_chain_workflows()
        try:  # connections the restart broke must not hang the close
            await asyncio.wait_for(pool.close(), 10)
        except TimeoutError:
            pool.terminate()


# --- a Temporal dev server of the test's own, which the test may stop ------------------------


class OwnTemporal:
    """A Temporal dev server on a SQLite file, stopped and started again on the same port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.db_file = tmp_path / "temporal.db"
        self.log_path = tmp_path / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                temporal_dev_server_args(self.port, db_file=self.db_file),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )

    async def start(self) -> None:
        self.process = process = self._spawn()
        await asyncio.to_thread(wait_for_port, "127.0.0.1", self.port, 60, process)

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(stop_process, self.process)
            self.process = None


@pytest_asyncio.fixture(loop_scope="session")
async def own_temporal(tmp_path: Path) -> AsyncIterator[OwnTemporal]:
    temporal = OwnTemporal(tmp_path)
    await temporal.start()
    try:
        yield temporal
    finally:
        await temporal.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def own_temporal_harness(
    own_temporal: OwnTemporal, database_url: str
) -> AsyncIterator[Harness]:
    """A harness on the session's PostgreSQL and the test's own Temporal dev server."""
    client = await connect_temporal(own_temporal.address)
    pool = await create_pool(database_url, max_size=20)
    harness = Harness(pool, client)
    try:
        yield harness
    finally:
        with contextlib.suppress(Exception):  # the server may be gone if the test failed
            await asyncio.wait_for(harness.terminate_chain_workflows(), 10)
        await pool.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of every fault case that ran, after the test results."""
    if not _REPORTS:
        return
    terminalreporter.section("fault cases (bench/results/faults.json)")
    terminalreporter.write_line(
        f"{'case':<24} {'expected':>9} {'found':>9} {'dups':>5} {'recover s':>10}  metrics"
    )
    for r in _REPORTS:
        moved = ", ".join(f"{name}={value:g}" for name, value in r.metrics.items())
        terminalreporter.write_line(
            f"{r.case:<24} {r.blocks_expected:>9} {r.blocks_found:>9} {r.duplicates:>5}"
            f" {r.recover_seconds:>10.2f}  {moved}"
        )
