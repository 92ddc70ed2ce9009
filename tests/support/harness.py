"""An indexer wired to the real services: a pool, a Temporal client, a fresh task queue."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry
from temporalio.client import Client, WorkflowExecutionStatus

from exporter.metrics import Metrics
from indexer.config import BIGINT_MAX, ChainConfig
from indexer.store.chains import ChainRow, get_chain, upsert_chain
from indexer.store.ranges import coverage
from indexer.temporal_client import head_scan_id, start_head_scan
from indexer.worker import running_worker
from tests.support.chaindata import ExpectedBlock
from tests.support.waiting import wait_until


class Harness:
    """What an integration test needs: the pool, the client, a worker, and ways to wait."""

    def __init__(self, pool: asyncpg.Pool, client: Client) -> None:
        self.pool = pool
        self.client = client
        self.task_queue = f"tq-{uuid.uuid4().hex[:8]}"
        self.metrics = Metrics(CollectorRegistry())
        self.chains: list[str] = []

    def chain_config(self, rpc_url: str | None, **knobs: Any) -> ChainConfig:
        name = f"c{uuid.uuid4().hex[:8]}"
        self.chains.append(name)
        return ChainConfig(name=name, rpc_url=rpc_url, **knobs)

    async def add_chain(self, rpc_url: str | None, **knobs: Any) -> ChainRow:
        """A fresh chain on `rpc_url`, or None with `providers=[...]` among the knobs."""
        return await upsert_chain(self.pool, self.chain_config(rpc_url, **knobs))

    async def chain(self, name: str) -> ChainRow:
        row = await get_chain(self.pool, name)
        assert row is not None
        return row

    def worker(self, **options: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        return running_worker(
            self.client, self.pool, self.task_queue, metrics=self.metrics, **options
        )

    async def start(self, chain: str) -> None:
        await start_head_scan(self.client, chain, self.task_queue)

    def sample(self, name: str, **labels: str) -> float:
        """A sample of the harness's metrics; 0 for a series not created yet."""
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    async def head_scan_failure(self, chain: str) -> tuple[str, str] | None:
        """(type, message) of the failure the chain's HeadScan is retrying its scan after."""
        description = await self.client.get_workflow_handle(head_scan_id(chain)).describe()
        for pending in description.raw_description.pending_activities:
            failure = pending.last_failure
            if failure.message:
                return failure.application_failure_info.type, failure.message
        return None

    async def head_scan_failed(self, chain: str, timeout: float = 30) -> tuple[str, str]:
        """Wait until the chain's HeadScan retries a failed scan; the failure's type and message."""
        found: list[tuple[str, str]] = []

        async def failed() -> bool:
            failure = await self.head_scan_failure(chain)
            found[:] = [failure] if failure else []
            return bool(found)

        await wait_until(failed, timeout, f"a failed scan of {chain}")
        return found[0]

    async def range_failures(self, chain: str) -> list[tuple[str, int, str]]:
        """(workflow ID, attempt, last failure) of each running IndexRange retrying its activity."""
        failures = []
        async for execution in self.client.list_workflows(
            f"WorkflowId STARTS_WITH 'index:{chain}:' AND ExecutionStatus = 'Running'"
        ):
            description = await self.client.get_workflow_handle(execution.id).describe()
            for pending in description.raw_description.pending_activities:
                if pending.last_failure.message:
                    failures.append((execution.id, pending.attempt, pending.last_failure.message))
        return failures

    async def block_count(self, chain_id: int) -> int:
        """How many block rows the chain has."""
        query = "SELECT count(*) FROM blocks WHERE chain_id = $1"
        return int(await self.pool.fetchval(query, chain_id))

    async def row_versions(self, chain_id: int) -> dict[int, str]:
        """Each block row's creating transaction (xmin): a block deleted and stored again, even
        identical, shows as a new version."""
        query = "SELECT number, xmin::text AS version FROM blocks WHERE chain_id = $1"
        return {r["number"]: r["version"] for r in await self.pool.fetch(query, chain_id)}

    async def stored(self, chain_id: int) -> dict[int, bytes]:
        rows = await self.pool.fetch(
            "SELECT number, hash FROM blocks WHERE chain_id = $1 ORDER BY number", chain_id
        )
        return {r["number"]: bytes(r["hash"]) for r in rows}

    async def stored_blocks(
        self, chain_id: int, low: int = 0, high: int = BIGINT_MAX
    ) -> dict[int, ExpectedBlock]:
        """Blocks low..high as PostgreSQL holds them, in the same shape as the chain returns."""
        blocks = await self.pool.fetch(
            "SELECT number, hash, parent_hash FROM blocks"
            " WHERE chain_id = $1 AND number BETWEEN $2 AND $3",
            chain_id,
            low,
            high,
        )
        txs = await self.pool.fetch(
            "SELECT block_number, hash FROM transactions"
            " WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3"
            " ORDER BY block_number, tx_index",
            chain_id,
            low,
            high,
        )
        by_block: dict[int, list[bytes]] = {}
        for tx in txs:
            by_block.setdefault(tx["block_number"], []).append(bytes(tx["hash"]))
        return {
            b["number"]: ExpectedBlock(
                bytes(b["hash"]), bytes(b["parent_hash"]), tuple(by_block.get(b["number"], ()))
            )
            for b in blocks
        }

    async def ranges(self, chain_id: int) -> list[tuple[int, int]]:
        rows = await self.pool.fetch(
            "SELECT start_block, end_block FROM indexed_ranges WHERE chain_id = $1"
            " ORDER BY start_block",
            chain_id,
        )
        return [(r["start_block"], r["end_block"]) for r in rows]

    async def terminate_chain_workflows(self) -> None:
        for chain in self.chains:
            async for execution in self.client.list_workflows(
                f"WorkflowId STARTS_WITH 'headscan:{chain}' OR WorkflowId STARTS_WITH"
                f" 'scheduler:{chain}' OR WorkflowId STARTS_WITH 'index:{chain}:'"
            ):
                if execution.status == WorkflowExecutionStatus.RUNNING:
                    with contextlib.suppress(Exception):
                        await self.client.get_workflow_handle(execution.id).terminate()


async def fully_indexed(harness: Harness, chain: str, head: int) -> bool:
    """Whether the chain's head has reached `head` and blocks 0..head are all indexed."""
    row = await harness.chain(chain)
    if row.head is None or row.head < head:
        return False
    covered = await coverage(harness.pool, row.id, 0, head)
    return covered.missing_blocks == 0


@dataclass
class ObservedIndexer:
    """The harness plus a traced client with SDK metrics and a real /metrics endpoint."""

    harness: Harness
    metrics: Metrics
    client: Client
    url: str
    database_url: str
