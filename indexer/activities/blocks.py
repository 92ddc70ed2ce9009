"""Activities that touch the chain and the block store: index a range, scan the head."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from exporter.tracing import current_trace_id, tracer
from indexer.activities.chain_cache import ChainCache, knobs
from indexer.activities.heartbeat import heartbeating
from indexer.chain.model import BadChainData, Block
from indexer.chain.rpc import RpcClient, RpcError, RpcUnavailable
from indexer.store.blocks import delete_from, store_range, stored_hashes
from indexer.store.chains import set_head
from indexer.store.ranges import coverage, is_covered
from indexer.workflows.inputs import (
    IndexRangeInput,
    IndexRangeResult,
    Range,
    ScanHeadInput,
    ScanResult,
)

MAX_GAPS_PER_SCAN = 10_000  # bounds the scan result's size; later gaps come in later scans
# A store normally takes milliseconds (COPY + upsert: 225k rows/s): these bounds only trip on a
# stuck one, with room for a slow database and for the largest ranges.
STORE_BASE_SECONDS = 30.0
STORE_ROWS_PER_SECOND = 10_000


def store_deadline(rows: int) -> float:
    """Seconds a store of `rows` blocks and transactions may take before it is abandoned."""
    return STORE_BASE_SECONDS + rows / STORE_ROWS_PER_SECOND


async def store_within(
    pool: asyncpg.Pool, chain_id: int, blocks: list[Block], seconds: float
) -> None:
    """store_range on a pooled connection, abandoned (rolled back) after `seconds`.

    asyncpg waits forever for a connection lost in the middle of a COPY (its flow-control wait
    ignores every timeout), and the background heartbeat would keep such an activity alive
    until its start-to-close timeout; cancelled, the connection is closed and left out of the
    pool, and the activity fails to be retried.
    """
    async with asyncio.timeout(seconds), pool.acquire() as conn:
        await store_range(conn, chain_id, blocks)


def _chain_failure(exc: Exception) -> ApplicationError:
    """Bad chain data and exhausted RPC retries become a clear, retryable activity failure."""
    return ApplicationError(f"{type(exc).__name__}: {exc}", type=type(exc).__name__)


class BlockActivities:
    def __init__(self, chains: ChainCache) -> None:
        self.chains = chains
        self.pool = chains.pool
        self.metrics = chains.metrics

    @activity.defn(name="index_range")
    async def index_range(self, request: IndexRangeInput) -> IndexRangeResult:
        """Fetch blocks start..end and store them with their range in one transaction."""
        chain = await self.chains.chain(request.chain)
        with self.metrics.pg_query_duration.labels("is_covered").time():
            covered = await is_covered(self.pool, chain.id, request.start, request.end)
        if covered:
            return IndexRangeResult(blocks=0, transactions=0, skipped=True)
        rpc = self.chains.rpc(chain.config)
        attributes: dict[str, str | int] = {
            "chain": request.chain,
            "range.start": request.start,
            "range.end": request.end,
            "blocks": request.end - request.start + 1,
        }
        async with heartbeating():
            with tracer().start_as_current_span("rpc.fetch_blocks", attributes=attributes):
                started = time.perf_counter()
                try:
                    blocks = await rpc.get_blocks(request.start, request.end)
                except (BadChainData, RpcUnavailable, RpcError) as exc:
                    raise _chain_failure(exc) from exc
                fetched = time.perf_counter()
                self._observe_phase(request.chain, "fetch", fetched - started)
            transactions = sum(len(b.transactions) for b in blocks)
            with tracer().start_as_current_span(
                "postgres.store_range", attributes={**attributes, "transactions": transactions}
            ):
                deadline = store_deadline(len(blocks) + transactions)
                try:
                    await store_within(self.pool, chain.id, blocks, deadline)
                except BadChainData as exc:
                    raise _chain_failure(exc) from exc
                except TimeoutError as exc:
                    raise ApplicationError(
                        f"storing blocks {request.start}..{request.end} took over"
                        f" {deadline:.0f}s: PostgreSQL unreachable or stuck",
                        type="StoreTimeout",
                    ) from exc
                stored = time.perf_counter()
                self._observe_phase(request.chain, "store", stored - fetched)
                self.metrics.pg_query_duration.labels("store_range").observe(stored - fetched)
        self.metrics.blocks_indexed.labels(request.chain).inc(len(blocks))
        return IndexRangeResult(blocks=len(blocks), transactions=transactions)

    def _observe_phase(self, chain: str, phase: str, seconds: float) -> None:
        """Histogram with the current trace as exemplar, to jump from a slow bucket to a trace."""
        trace_id = current_trace_id()
        self.metrics.index_range_duration.labels(chain, phase).observe(
            seconds, exemplar={"trace_id": trace_id} if trace_id else None
        )

    @activity.defn(name="scan_head")
    async def scan_head(self, request: ScanHeadInput | str) -> ScanResult:
        """Latest available block, reorg repair near it, and the gaps still to index."""
        # A HeadScan run started before ScanHeadInput existed passes the bare chain name.
        chain_name = request if isinstance(request, str) else request.chain
        chain = await self.chains.chain(chain_name)
        config = chain.config
        rpc = self.chains.rpc(config)
        async with heartbeating():
            try:
                head = await rpc.latest_available_block()
                depth = await self._repair_reorg(
                    chain.id, config.name, rpc, head, config.max_reorg_depth
                )
            except (BadChainData, RpcUnavailable, RpcError) as exc:
                raise _chain_failure(exc) from exc
            await set_head(self.pool, chain.id, head)
            with self.metrics.pg_query_duration.labels("coverage").time():
                covered = await coverage(self.pool, chain.id, config.start_block, head)
        return ScanResult(
            head=head,
            missing_blocks=covered.missing_blocks,
            gaps=[Range(start, end) for start, end in covered.gaps[:MAX_GAPS_PER_SCAN]],
            knobs=knobs(config),
            reorg_depth=depth,
        )

    async def _repair_reorg(
        self, chain_id: int, chain_name: str, rpc: RpcClient, head: int, window: int
    ) -> int:
        """Compare stored hashes near the head with the chain; delete from the first mismatch up."""
        low = max(0, head - window + 1)
        with self.metrics.pg_query_duration.labels("reorg_window").time():
            stored = await stored_hashes(self.pool, chain_id, low)
        if not stored:
            return 0
        canonical = await rpc.get_block_hashes(low, min(head, max(stored)))
        forked = sorted(n for n, h in stored.items() if canonical.get(n) != h)
        if not forked:
            return 0
        fork_start, top = forked[0], max(stored)
        async with self.pool.acquire() as conn:
            await delete_from(conn, chain_id, fork_start, top)
        depth = top - fork_start + 1
        self.metrics.reorgs.labels(chain_name).inc()
        self.metrics.reorg_depth.labels(chain_name).observe(depth)
        activity.logger.warning(
            "reorg on %s: blocks %d..%d replaced (depth %d)", chain_name, fork_start, top, depth
        )
        return depth
