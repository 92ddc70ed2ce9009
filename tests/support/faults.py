"""The fault suite's shared steps: start a backfill, wait for coverage, check the data exactly,
report the case's figures (printed, and merged into bench/results/faults.json on request)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from indexer.store.chains import ChainRow
from indexer.store.ranges import coverage
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness
from tests.support.provider_proxy import ProviderProxy
from tests.support.simchain import sim_head
from tests.support.waiting import wait_until
from tests.support.workers import WorkerProcess, WorkerProcesses

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "faults.json"
# Pinned, whatever the default: a 30,000-block backfill is then 60 ranges, more than a worker
# runs at once, so a fault meets ranges in flight and ranges still waiting to be dispatched.
BLOCKS_PER_WORKFLOW = 500

# While PostgreSQL or Temporal is down, a poll of the database fails; that is not the answer.
UNAVAILABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)
# How often the suite polls: recover_seconds is measured by these polls.
POLL_SECONDS = 0.1


# --- a backfill by worker processes ----------------------------------------------------------


@dataclass
class Backfill:
    """A chain being backfilled by `tindexer worker` processes on the harness's task queue."""

    harness: Harness
    workers: WorkerProcesses
    database_url: str
    temporal_address: str
    row: ChainRow
    began: float

    async def start_worker(
        self, max_concurrent_activities: int = 32, pollers: int = 5
    ) -> WorkerProcess:
        """One more worker process, once its /metrics answers."""
        worker = self.workers.start(
            self.harness.task_queue,
            self.database_url,
            self.temporal_address,
            max_concurrent_activities=max_concurrent_activities,
            pollers=pollers,
        )
        await worker.ready()
        return worker


async def start_backfill(
    harness: Harness,
    workers: WorkerProcesses,
    url: str,
    database_url: str,
    temporal_address: str | None = None,
    max_concurrent_activities: int = 32,
    pollers: int = 5,
) -> tuple[Backfill, WorkerProcess]:
    """Add the chain at `url`, start a worker process and the chain's HeadScan: the set-up of
    every case that runs the indexer as worker processes. The clock starts before the worker."""
    row = await harness.add_chain(
        url, head_poll_interval_seconds=0.5, blocks_per_workflow=BLOCKS_PER_WORKFLOW
    )
    address = temporal_address or harness.client.service_client.config.target_host
    backfill = Backfill(harness, workers, database_url, address, row, time.monotonic())
    worker = await backfill.start_worker(max_concurrent_activities, pollers)
    await harness.start(row.config.name)
    return backfill, worker


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


async def wait_indexed(
    harness: Harness, chain_id: int, blocks: float, timeout: float, what: str
) -> float:
    """Wait until indexed_ranges hold at least `blocks` blocks of the chain."""

    async def enough() -> bool:
        return await indexed_blocks(harness.pool, chain_id) >= blocks

    return await wait_until(enough, timeout, what, POLL_SECONDS, retry_on=UNAVAILABLE)


async def covered(pool: asyncpg.Pool, chain_id: int, head: int) -> bool:
    """Whether 0..head is entirely indexed; False (not an error) while PostgreSQL is away."""
    try:
        return (await coverage(pool, chain_id, 0, head)).missing_blocks == 0
    except UNAVAILABLE:
        return False


async def wait_covered(harness: Harness, chain_id: int, head: int, timeout: float) -> float:
    """Wait until blocks 0..head are indexed; the monotonic time they were."""

    async def gaps() -> str:
        try:
            return str((await coverage(harness.pool, chain_id, 0, head)).gaps[:10])
        except UNAVAILABLE as exc:
            return repr(exc)

    return await wait_until(
        lambda: covered(harness.pool, chain_id, head),
        timeout,
        f"blocks 0..{head} to be indexed",
        POLL_SECONDS,
        retry_on=UNAVAILABLE,
        diagnose=gaps,
    )


async def caught_up(harness: Harness, chain_id: int, url: str, timeout: float = 30) -> int:
    """Wait until every block up to the simulated chain's current head is stored; that head."""
    head = await sim_head(url)

    async def stored_to_head() -> bool:
        nonlocal head
        head = await sim_head(url)
        return await covered(harness.pool, chain_id, head) and await sim_head(url) == head

    await wait_until(
        stored_to_head, timeout, "live sync to reach the head", interval=0.05, retry_on=UNAVAILABLE
    )
    return head


@contextlib.asynccontextmanager
async def indexed_behind_proxy(
    harness: Harness, upstream: str, head_poll_interval_seconds: float, **knobs: Any
) -> AsyncIterator[tuple[ProviderProxy, ChainRow]]:
    """The static chain at `upstream`, served through a ProviderProxy and indexed to its head by
    a running worker: where a provider fault begins. The worker stops when the block ends."""
    proxy = ProviderProxy(upstream)
    async with proxy.running() as url:
        row = await harness.add_chain(
            url,
            head_poll_interval_seconds=head_poll_interval_seconds,
            blocks_per_workflow=250,
            **knobs,
        )
        async with harness.worker():
            await harness.start(row.config.name)
            await wait_covered(harness, row.id, await sim_head(upstream), 60)
            yield proxy, row


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
    """What assert_exactly_indexed found: blocks on the chain, blocks stored, rows doubled."""

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
    """One fault case's figures: an entry of bench/results/faults.json."""

    case: str
    fault: str
    blocks_expected: int
    blocks_found: int
    duplicates: int
    recover_seconds: float
    total_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_check(
        cls,
        case: str,
        fault: str,
        check: DataCheck,
        *,
        recover_seconds: float,
        total_seconds: float,
        metrics: dict[str, float],
        details: dict[str, Any] | None = None,
    ) -> FaultReport:
        """The report of a case whose data passed `check`."""
        return cls(
            case=case,
            fault=fault,
            blocks_expected=check.expected,
            blocks_found=check.found,
            duplicates=check.duplicates,
            recover_seconds=recover_seconds,
            total_seconds=total_seconds,
            metrics=metrics,
            details=details or {},
        )


REPORTS: list[FaultReport] = []


def record(report: FaultReport) -> None:
    """Print the case's figures; with TINDEXER_FAULTS_RESULTS set, merge them into faults.json."""
    REPORTS.append(report)
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
