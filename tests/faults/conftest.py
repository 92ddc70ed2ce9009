"""Fixtures of the fault-injection suite: worker processes, a PostgreSQL or Temporal of the
test's own, and the figures of every case after the test results.

Every case backfills tens of thousands of simulated blocks through a real Temporal dev server
into a real PostgreSQL, injects its fault mid-run, lets the system recover by itself and then
checks the data exactly. Its figures (blocks expected and found, duplicates, time to recover,
the metric that moved during the fault) are printed and merged into bench/results/faults.json.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from indexer.embedded import embedded_postgres
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal
from tests.support.faults import REPORTS
from tests.support.harness import Harness
from tests.support.own_services import OwnPostgres, OwnTemporal
from tests.support.workers import WorkerProcesses


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()


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
    if not REPORTS:
        return
    terminalreporter.section("fault cases (bench/results/faults.json)")
    terminalreporter.write_line(
        f"{'case':<24} {'expected':>9} {'found':>9} {'dups':>5} {'recover s':>10}  metrics"
    )
    for r in REPORTS:
        moved = ", ".join(f"{name}={value:g}" for name, value in r.metrics.items())
        terminalreporter.write_line(
            f"{r.case:<24} {r.blocks_expected:>9} {r.blocks_found:>9} {r.duplicates:>5}"
            f" {r.recover_seconds:>10.2f}  {moved}"
        )
